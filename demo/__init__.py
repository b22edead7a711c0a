"""``jaranijo demo``: the whole system on emulated devices, narrated step by step
(:mod:`demo.story`; the office's pages in :mod:`demo.office_flow`, the stand-in for
BSrE's signing in :mod:`demo.bsre`).

Only the command's registration lives here, with nothing heavy imported: every
``jaranijo`` command (the agent and the kiosk too) loads it through :mod:`sync.cli`, and
the story's imports (OpenCV, NumPy, the TPM library) cost about 60 MiB of resident memory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sync.cli import not_installed


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``demo`` to ``jaranijo`` (:mod:`sync.cli` finds this through its entry points);
    it runs the office and the emulated rig, so it needs both extras."""
    summary = "run the whole system on emulated devices and narrate it"
    if not_installed(sub, "demo", "office,rig", ("django", "skimage"), summary):
        return
    p = sub.add_parser("demo", help=summary)
    p.add_argument("--headless", action="store_true", help="no kiosk window, even with a display")
    p.add_argument("--keep", metavar="DIR", help="keep the demo's files in DIR (default: temp)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from demo.story import run_demo

    return run_demo(headless=args.headless, keep=Path(args.keep) if args.keep else None,
                    lang=args.lang)

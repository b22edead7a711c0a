"""``jaranijo``: the one command line for kits, technicians and the office.

Each package adds its own subcommands, found through the ``jaranijo.commands``
entry points of the installed distribution (``pyproject.toml``), the way
pytest finds its plugins: a ``register(subparsers)`` function that adds
parsers whose ``func`` default is the handler. So this module imports no
package above it, and no package imports one above it to join in. An
expected fault (a :class:`~sync.errors.Fault`, from any package) prints one
line in the chosen language and exits 2; only a bug prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import Distribution, EntryPoint, entry_points

from sync import __version__
from sync.errors import ConfigError, Fault

EXIT_FAULT = 2
ENTRY_POINT_GROUP = "jaranijo.commands"

Handler = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


def not_installed(sub: Subparsers, command: str, extra: str, modules: Sequence[str],
                  summary: str) -> bool:
    """Whether ``command`` cannot run here for want of ``extra``'s modules; if so it is
    registered as a refusal that says so (a kit image carries only the kit's part of the
    project, not the office's). ``register`` functions call this first and stop on True."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if not absent:
        return False

    def refuse(args: argparse.Namespace) -> int:
        raise ConfigError(
            id=f"'jaranijo {command}' tidak terpasang di mesin ini (tidak ada modul "
               f"{', '.join(absent)}; sebuah kit hanya membawa bagian kit)",
            en=f"'jaranijo {command}' is not installed on this machine (no module "
               f"{', '.join(absent)}; a kit carries only the kit's part)",
            hint_id=f"Pasang dengan: pip install 'jaranijo[{extra}]' (./bootstrap memasang "
                    f"semuanya)",
            hint_en=f"Install it with: pip install 'jaranijo[{extra}]' (./bootstrap installs "
                    f"everything)",
            code="not_installed")

    # whatever follows is taken as it is (no option is known here, -h included): the
    # refusal is the answer to any of them
    p = sub.add_parser(command, help=f"{summary} (not installed here: jaranijo[{extra}])",
                       prefix_chars="\0", add_help=False)
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    p.set_defaults(func=refuse)
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaranijo",
        description="Jaran Ijo: home KTP-el recording kit (SI JARAN IJO, Disdukcapil "
                    "Kabupaten Blitar) and its office link.",
    )
    parser.add_argument("--version", action="version", version=f"jaranijo {__version__}")
    parser.add_argument("--config", help="kit configuration file (default: $JARANIJO_CONFIG "
                                         "or /etc/jaranijo/kit.toml)")
    parser.add_argument("--lang", choices=("id", "en"), default=None,
                        help="language of messages (default: id, or $JARANIJO_LANG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ep in _commands():
        register: Callable[[Subparsers], None] = ep.load()
        register(sub)
    return parser


def _commands() -> list[EntryPoint]:
    """The ``jaranijo.commands`` entry points, by name.

    importlib.metadata keeps each ``sys.path`` folder's listing for as long as the folder's
    mtime stays the same, and takes the first distribution named ``jaranijo`` it meets (in
    a checkout, the ``jaranijo.egg-info`` an editable install leaves there). A test worker
    that had run for ten minutes was once handed no commands at all (in about one full run
    of three; never reproduced alone). So an empty answer is not believed: every jaranijo
    metadata folder on ``sys.path`` is read afresh (``Distribution.at``, no cache), and the
    first that declares commands is used; if none does, the error names what was read.
    """
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    if found:
        return found
    read: list[str] = []
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            # jaranijo-0.1.0.dist-info (an install) or jaranijo.egg-info (a checkout)
            if not name.endswith((".dist-info", ".egg-info")) \
                    or name.split("-")[0].removesuffix(".egg-info").lower() != "jaranijo":
                continue
            path = os.path.join(folder, name)
            read.append(path)
            found = sorted(Distribution.at(path).entry_points.select(group=ENTRY_POINT_GROUP),
                           key=lambda ep: ep.name)
            if found:
                logging.getLogger(__name__).warning(
                    "importlib.metadata found no subcommands; %s has them", path)
                return found
    raise SystemExit(
        "jaranijo: no subcommands are installed (metadata read: "
        f"{', '.join(read) or 'no jaranijo distribution on sys.path'}): "
        "run 'pip install -e .' in the checkout")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = args.lang or os.environ.get("JARANIJO_LANG")
    args.lang_given = chosen in ("id", "en")
    args.lang = chosen if args.lang_given else "id"
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not isinstance(exc, Fault):
            raise
        print(f"jaranijo: {exc.text(args.lang)}", file=sys.stderr)
        return EXIT_FAULT


if __name__ == "__main__":
    sys.exit(main())

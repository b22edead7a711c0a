"""Resident memory of the kit's two processes together: the kiosk and the agent.

``python -m tests.bench.bench_memory``. Both start on the emulated rig as the tests
start them: the kiosk (``tests.ui.driver``, the real Kivy app under Xvfb) walks the
``bench`` scenario to the photo screen with the camera preview running; the agent
(``jaranijo agent``, its own process, from the same kit config) samples the rig's
devices meanwhile (no broker is reachable, so it keeps retrying: the MQTT session
itself adds little). Every half second the bench reads both processes'
``/proc/PID/smaps`` and keeps the moment the two together held the most.

The target is 250 MB (238.4 MiB) for both. Under Xvfb, Kivy draws through Mesa's
llvmpipe, a software GL driver that compiles every shader and draws every pixel with
LLVM on the CPU; the Pi draws with V3D, in its GPU. Its mappings (libLLVM, libgallium,
the DRI/swrast driver, libGLX_mesa, libglapi) are counted apart, so the figure "without
the GL driver" is the one held against the target. Debian's Mesa is one DRI binary for
every driver, linked to libLLVM, so a Pi maps the same files; what it does not touch is
the code llvmpipe runs. The bench also prints the figure with the GL driver's private
dirty pages put back (libLLVM's relocated data, some 8 MiB: resident whatever the
driver): the nearest this rig gets to the Pi's share, which is not measured here (nor is
the memory V3D's buffers take). The rest is broken down by mapping: Python's heap and
anonymous memory, the shared libraries of OpenCV, numpy, Kivy/SDL and the others.

One thing in the kiosk process belongs to the rig, not to the kit, and hides in its
anonymous memory: the emulated camera's test pictures (read from scikit-image's package
folder, without importing ``skimage.data`` and its SciPy). Its cost is measured apart, in
a fresh interpreter that first loads what the kiosk loads anyway (numpy, OpenCV, Kivy,
the kit's modules), and printed as an estimate; it is not taken off the measured
figures. (The test pilot runs in the kiosk's process too; it imports no pytest, which
``tests/ui/test_imports.py`` holds it to.)

The sum of the two RSS figures counts twice every page of a file both processes map
(the interpreter, libpython, numpy, libcrypto...): the same page cache pages. Run as
root, the bench also reads both ``/proc/PID/pagemap`` at the peak and prints the
physical memory the two hold together, each page frame once, outside the GL driver's
mappings; the RSS sum stays the headline figure.

What is left of the kiosk's anonymous memory (about 129 MiB, issue 15, Dec 2026): some
70 MiB of Python objects and code (tracemalloc: the code and dicts of some 1100
modules, about 180 of them skimage's and SciPy's, since gone; the
Kivy widgets of the screens built so far, the emulated camera's frames), the rest native
heap (glibc's arenas hold little free memory -- MALLOC_ARENA_MAX=2 saved about
1 MiB -- the rest is Mesa/llvmpipe's buffers, SDL, Kivy's textures, OpenCV; fewer
llvmpipe threads, LP_NUM_THREADS=0, changed nothing measurable).
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

TARGET_MIB = 250e6 / 2**20  # 238.4 MiB
PAGE = os.sysconf("SC_PAGE_SIZE")
ROUNDS = 3

# A mapping's group, by its path; the first that matches.
GL_DRIVER = re.compile(r"libLLVM|libgallium|swrast|_dri\.so|/dri/|libGLX_mesa|libglapi"
                       r"|libvulkan|libEGL_mesa|libgbm|libdrm")
GROUPS = [
    ("GL driver (llvmpipe)", GL_DRIVER),
    # the emulated camera's test picture (skimage.data) brings SciPy and imageio: a
    # kit with a real camera has none of them
    ("emulated camera (skimage, SciPy)", re.compile(r"skimage|/scipy|imageio", re.I)),
    ("tpm2_pytss (cffi, libtss2)", re.compile(r"tpm2_pytss|libtss2", re.I)),
    ("OpenCV", re.compile(r"cv2|opencv|libavcodec|libavformat|libavutil|libswscale"
                          r"|libgfortran|libopenblas|libQt|libtbb", re.I)),
    ("numpy", re.compile(r"numpy|libscipy_openblas|openblas", re.I)),
    ("Kivy / SDL / fonts", re.compile(r"kivy|SDL|libGL|libX|libxcb|freetype|harfbuzz"
                                      r"|\.ttf|\.otf|libpng|libjpeg", re.I)),
    ("Python + stdlib", re.compile(r"python3|libpython|lib-dynload|libc\.so|libm\.so"
                                   r"|ld-linux|libssl|libcrypto|libsqlite|libz|libffi")),
]


# Not a group of its own: the part of the GL driver's resident KiB that is private and
# dirty (libLLVM's and the DRI driver's relocated data), kept beside the groups.
GL_DIRTY = "GL driver, private dirty"


def rss(groups: Counter[str]) -> int:
    """The resident KiB of a process's groups (the GL_DIRTY entry is a part, not a sum)."""
    return sum(v for name, v in groups.items() if name != GL_DIRTY)


def smaps(pid: int) -> Counter[str] | None:
    """Resident KiB of one process by group (from /proc/PID/smaps), and ``GL_DIRTY``;
    None if it is gone."""
    out: Counter[str] = Counter()
    try:
        text = Path(f"/proc/{pid}/smaps").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    group = "anonymous (heap, Python objects)"
    for line in text.splitlines():
        head = line.split(None, 1)[0] if line else ""
        if head and not head.endswith(":") and "-" in head:  # a mapping's header line
            fields = line.split(None, 5)
            path = fields[5] if len(fields) > 5 else ""
            group = "anonymous (heap, Python objects)" if not path or path.startswith("[") \
                else next((name for name, rx in GROUPS if rx.search(path)), "other libraries")
        elif head == "Rss:":
            out[group] += int(line.split()[1])
        elif head == "Private_Dirty:" and group == GROUPS[0][0]:
            out[GL_DIRTY] += int(line.split()[1])
    return out


def frames(pid: int) -> set[int] | None:
    """The physical page frames ``pid`` has resident outside the GL driver's mappings
    (``/proc/PID/pagemap``, root only: without CAP_SYS_ADMIN the kernel hides the frame
    numbers, and this is None)."""
    import numpy as np

    found: list[np.ndarray] = []
    try:
        with open(f"/proc/{pid}/maps", encoding="ascii") as maps, \
                open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            for line in maps:
                if line.rstrip().endswith("[vsyscall]") or GL_DRIVER.search(line):
                    continue
                start, end = (int(v, 16) for v in line.split(None, 1)[0].split("-"))
                pagemap.seek(start // PAGE * 8)
                entries = np.frombuffer(pagemap.read((end - start) // PAGE * 8), "<u8")
                present = entries[(entries >> np.uint64(63)) == 1]
                found.append(present & np.uint64((1 << 55) - 1))
    except OSError:
        return None
    pfns = set(np.unique(np.concatenate(found)).tolist()) if found else set()
    return pfns if any(pfns) else None


def children(parent: int) -> list[int]:
    """Every process descended from ``parent``."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            kids.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = [], [parent]
    while todo:
        for kid in kids.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def one_round(display: str) -> tuple[Counter[str], Counter[str], float, float, float]:
    """(kiosk groups, agent groups) at the moment both together peaked, in KiB, the
    kiosk's own VmRSS figure from inside the scenario (MiB), and the peak (MiB) of a
    second agent started without the command line (``run_agent`` itself: what the
    agent costs without every subcommand's imports that ``jaranijo`` registers), and at
    the peak the MiB of physical memory the two hold together, each page once (NaN where
    the frame numbers are hidden)."""
    import tests.conftest as shared
    from tests.ui import conftest as ui

    root = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    with shared.kit_rig(root) as kit:
        log = open(root / "agent.log", "ab")  # noqa: SIM115 -- closed below
        agent = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "--config", kit.config.source, "agent"],
            cwd=ui.ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
        bare = subprocess.Popen(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from kit.agent.service import run_agent; sys.exit(run_agent(Path(sys.argv[1])))",
             kit.config.source],
            cwd=ui.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
        best: tuple[int, Counter[str], Counter[str]] = (0, Counter(), Counter())
        union = float("nan")
        bare_peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal best, bare_peak, union
            me = os.getpid()
            while not stop.wait(0.5):
                b = smaps(bare.pid)
                if b is not None and bare.poll() is None:
                    bare_peak = max(bare_peak, rss(b))
                kiosk = next((p for p in children(me) if "tests.ui.driver" in cmdline(p)),
                             None)
                if kiosk is None or agent.poll() is not None:
                    continue
                k, a = smaps(kiosk), smaps(agent.pid)
                if k is None or a is None:
                    continue
                total = rss(k) + rss(a)
                if total > best[0]:
                    best = (total, k, a)
                    kf, af = frames(kiosk), frames(agent.pid)
                    union = (len(kf | af) * PAGE / 2**20 if kf is not None and af is not None
                             else float("nan"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out = ui.run_scenario(display, kit, "bench")["findings"]
        finally:
            stop.set()
            sampler.join()
            for proc in (agent, bare):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        if agent.returncode not in (0, -15):
            tail = (root / "agent.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the agent exited with {agent.returncode}:\n{tail}")
    return best[1], best[2], float(out["rss_mib"]), mib(bare_peak), union


# Run in a fresh interpreter: RSS (KiB) before and after the rig's own parts, with what the
# kiosk loads on a kit anyway loaded first so that only the rig's share is counted.
RIG_SHARE = """
import json, os
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
def rss():
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
import numpy, cv2, kivy.uix.screenmanager
import ui.launch, kit.devices, kit.visit, sensors.photo_quality, sensors.emulated.camera
out = {}
before = rss()
sensors.emulated.camera._astronaut()
out["camera"] = rss() - before
print(json.dumps(out))
"""


def rig_share() -> dict[str, float]:
    """MiB the kiosk process holds for the rig, not the kit: ``camera`` (the emulated
    camera's test picture, decoded). An estimate from a fresh interpreter (see the
    docstring)."""
    import json

    from tests.ui import conftest as ui

    out = subprocess.run([sys.executable, "-c", RIG_SHARE], cwd=ui.ROOT, check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, KIVY_NO_ARGS="1", KIVY_NO_FILELOG="1")).stdout
    return {k: mib(v) for k, v in json.loads(out.splitlines()[-1]).items()}


def mib(kib: float) -> float:
    return kib / 1024


def main() -> None:
    from tests.ui import conftest as ui

    display_gen = ui.display.__wrapped__()
    display = next(display_gen)
    rounds = []
    try:
        for _ in range(ROUNDS):
            rounds.append(one_round(display))
            time.sleep(1)
    finally:
        with contextlib.suppress(StopIteration):
            next(display_gen)

    def med(pick: object) -> float:
        return statistics.median(pick(k, a) for k, a, *_ in rounds)  # type: ignore[operator]

    gl = GROUPS[0][0]
    kiosk = med(lambda k, a: mib(rss(k)))
    agent = med(lambda k, a: mib(rss(a)))
    kiosk_gl = med(lambda k, a: mib(k[gl]))
    both = med(lambda k, a: mib(rss(k) + rss(a)))
    both_no_gl = med(lambda k, a: mib(rss(k) + rss(a) - k[gl] - a[gl]))
    both_gl_dirty = med(lambda k, a: mib(rss(k) + rss(a) - k[gl] - a[gl] + k[GL_DIRTY]
                                         + a[GL_DIRTY]))
    inside = statistics.median(r[2] for r in rounds)
    print(f"kiosk + agent resident memory (RSS, emulated rig, 800x480, preview running), "
          f"median of {ROUNDS}; target {TARGET_MIB:.1f} MiB (250 MB)")
    print(f"  kiosk {kiosk:7.1f} MiB   (its own VmRSS in the scenario: {inside:.1f} MiB; "
          f"of it GL driver {kiosk_gl:.1f} MiB)")
    bare = statistics.median(r[3] for r in rounds)
    print(f"  agent {agent:7.1f} MiB   (started as run_agent() without the jaranijo command "
          f"line's subcommand imports: {bare:.1f} MiB)")
    print(f"  both  {both:7.1f} MiB   ({both / TARGET_MIB:.2f}x the target)")
    print(f"  both without the GL driver's mappings {both_no_gl:7.1f} MiB   "
          f"({both_no_gl / TARGET_MIB:.2f}x the target {TARGET_MIB:.1f} MiB)")
    print(f"  both with the GL driver's private dirty pages only (what any Mesa driver holds, "
          f"V3D too: libLLVM's relocations; not the code llvmpipe runs) "
          f"{both_gl_dirty:7.1f} MiB   ({both_gl_dirty / TARGET_MIB:.2f}x the target)")
    rig = rig_share()
    print(f"  of the kiosk, the rig's (estimate, not taken off): emulated camera's test "
          f"picture {rig['camera']:.1f} MiB; both without GL and without it "
          f"{both_no_gl - rig['camera']:7.1f} MiB")
    once = statistics.median(r[4] for r in rounds)
    print(f"  both without the GL driver, each physical page once (pagemap: python, numpy, "
          f"libcrypto... that both map count once, not twice) {once:7.1f} MiB")
    names = [name for name, _ in GROUPS] + ["other libraries",
                                            "anonymous (heap, Python objects)"]
    print(f"  by mapping (MiB)          {'kiosk':>8} {'agent':>8}")
    for name in names:
        k = med(lambda kk, a, n=name: mib(kk[n]))
        a = med(lambda kk, aa, n=name: mib(aa[n]))
        print(f"    {name:<32} {k:>8.1f} {a:>8.1f}")


if __name__ == "__main__":
    main()

"""Unit checks of image-build/: they build nothing and need no network (CI-safe).

The full build and boot test are the separate commands in image-build/README.md; these
check the parts that decide what a kit boots into: the partition layout, fstab, the
configure script run inside the image, and the requirements chosen for arm64.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

IMAGE_BUILD = Path(__file__).resolve().parents[2] / "image-build"
BUILD = IMAGE_BUILD / "build"
BOOT_TEST = IMAGE_BUILD / "boot-test"


def load(path: Path, name: str) -> ModuleType:
    """The scripts have no .py suffix (they are commands), so load them by path."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build() -> ModuleType:
    return load(BUILD, "jaranijo_image_build")


def test_help_names_every_stage_and_the_host_packages() -> None:
    out = subprocess.run([sys.executable, str(BUILD), "--help"], capture_output=True,
                         text=True, check=True).stdout
    for word in ("check", "wheels", "rootfs", "image", "mmdebstrap", "bmap-tools", "--out"):
        assert word in out


def test_unknown_stage_is_refused_with_the_known_ones() -> None:
    got = subprocess.run([sys.executable, str(BUILD), "--stages", "rootfs,flash"],
                         capture_output=True, text=True)
    assert got.returncode == 2
    assert "flash" in got.stderr and "wheels" in got.stderr


def test_rpios_variant_says_it_is_not_built(build: ModuleType) -> None:
    with pytest.raises(SystemExit, match="not implemented"):
        build.parse_args(["--variant", "rpios"])


def test_layout_is_aligned_ordered_and_sized(build: ModuleType) -> None:
    layout = build.compute_layout(1900, boot_mib=256, data_mib=1024)
    boot, root, data = layout.partitions
    assert (boot.label, root.label, data.label) == ("RASPIFIRM", "RASPIROOT", "JARANIJO-DATA")
    assert boot.start_mib == 4 and boot.type_id == "c"
    assert root.start_mib == boot.start_mib + boot.size_mib
    assert data.start_mib == root.start_mib + root.size_mib
    assert layout.total_mib == data.start_mib + data.size_mib
    assert root.size_mib >= 1900 * 1.25 and root.size_mib % 4 == 0
    for p in layout.partitions:
        assert p.start_sector * 512 % (1024 * 1024) == 0


def test_small_root_still_gets_the_minimum_free_space(build: ModuleType) -> None:
    root = build.compute_layout(100).partitions[1]
    assert root.size_mib >= 100 + 256


def test_layout_refuses_an_empty_root(build: ModuleType) -> None:
    with pytest.raises(ValueError):
        build.compute_layout(0)


def test_sfdisk_script_is_mbr_with_three_partitions(build: ModuleType) -> None:
    layout = build.compute_layout(1000)
    script = layout.sfdisk_script()
    assert script.startswith("label: dos\n")
    lines = [ln for ln in script.splitlines() if ln.startswith("start=")]
    assert len(lines) == 3
    assert lines[0] == f"start=8192, size={256 * 2048}, type=c"


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk (fdisk) not installed")
def test_sfdisk_accepts_the_layout_on_an_image_file(build: ModuleType, tmp_path: Path) -> None:
    layout = build.compute_layout(500, data_mib=64)
    img = tmp_path / "disk.img"
    with img.open("wb") as f:
        f.truncate(layout.total_mib * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", str(img)], input=layout.sfdisk_script().encode(),
                   check=True)
    dump = subprocess.run(["sfdisk", "-d", str(img)], capture_output=True, text=True,
                          check=True).stdout
    for p in layout.partitions:
        assert f"start={p.start_sector:>12}, size={p.size_sectors:>12}" in dump


def test_configure_script_locks_passwords_masks_ssh_and_enables_units(
        build: ModuleType) -> None:
    script = build.configure_script()
    assert script.startswith("#!/bin/sh\n")
    assert "set -eu" in script
    assert "passwd -l jaranijo" in script and "passwd -l root" in script
    assert "--shell /usr/sbin/nologin" in script
    assert "systemctl mask ssh.service" in script
    assert "rm -f /etc/ssh/ssh_host_*" in script
    assert ("systemctl enable jaranijo-firstboot.service jaranijo-agent.service "
            "jaranijo-kiosk.service") in script
    assert "jaranijo.overlay=1" in script
    assert "Storage=volatile" in script
    assert "apt-get purge -y --auto-remove gcc" in script
    assert "update-initramfs -u" in script
    # Every group the kit's units ask for exists or is created.
    for group in ("dialout", "video", "render", "input", "gpio", "i2c", "tss"):
        assert group in script.split("usermod -a -G ", 1)[1].split()[0].split(",")


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_configure_script_is_valid_shell(build: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "configure.sh"
    path.write_text(build.configure_script())
    subprocess.run(["sh", "-n", str(path)], check=True)
    hook = tmp_path / "overlay"
    hook.write_text(build.OVERLAY_HOOK)
    subprocess.run(["sh", "-n", str(hook)], check=True)


def test_fstab_root_read_only_and_store_on_the_data_partition(build: ModuleType) -> None:
    rows = [ln.split() for ln in build.fstab().splitlines() if ln and not ln.startswith("#")]
    by_target = {r[1]: r for r in rows}
    assert "ro" in by_target["/"][3].split(",")
    assert by_target["/var/lib/jaranijo-data"][0] == "LABEL=JARANIJO-DATA"
    for target in ("/var/lib/jaranijo", "/etc/jaranijo"):
        assert by_target[target][0].startswith("/var/lib/jaranijo-data/")
        assert "bind" in by_target[target][3]
    assert by_target["/boot/firmware"][2] == "vfat"


def test_target_requirements_are_the_kits_part_with_the_pi_extra(build: ModuleType) -> None:
    reqs = build.target_requirements()
    names = {r.split(">")[0].split("=")[0].split("[")[0].split("<")[0] for r in reqs}
    assert "wsq" not in names
    assert {"kivy", "pynacl", "lgpio", "tpm2-pytss"} <= names
    # the kit's part only: neither the office's web app and documents nor the rig's
    # test pictures (scikit-image brings SciPy)
    assert not names & {"django", "weasyprint", "pyhanko", "psycopg", "holidays",
                        "openpyxl", "scikit-image", "uvicorn"}
    assert all(";" not in r for r in reqs)


def test_boot_test_help_and_no_rfc1918_address() -> None:
    out = subprocess.run([sys.executable, str(BOOT_TEST), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--image" in out and "--devices" in out
    boot_test = load(BOOT_TEST, "jaranijo_boot_test")
    # The guest network replaces slirp's default 10.0.2.0/24 (RFC 1918) with the RFC 2544
    # test range; the host side is loopback only.
    net = ipaddress.ip_network(boot_test.GUEST_NET)
    assert ipaddress.ip_address(boot_test.GUEST_GATEWAY) in net
    for rfc1918 in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        assert not net.overlaps(ipaddress.ip_network(rfc1918))
    code = [ln for ln in BOOT_TEST.read_text().splitlines()
            if not ln.lstrip().startswith("#") and "slirp's default" not in ln]
    assert not any(re.search(r"\b(10\.\d+|192\.168|172\.(1[6-9]|2\d|3[01]))\.\d+", ln)
                   for ln in code)
    assert "net={GUEST_NET}" in BOOT_TEST.read_text()


def test_boot_test_cmdline_moves_console_and_runs_nothing_of_its_own(build: ModuleType) -> None:
    boot_test = load(BOOT_TEST, "jaranijo_boot_test")
    line = boot_test.guest_cmdline("console=tty1 console=ttyS1,115200 root=LABEL=RASPIROOT "
                                   "rw jaranijo.overlay=1\n")
    words = line.split()
    assert [w for w in words if w.startswith("console=")] == ["console=ttyAMA0,115200"]
    assert "jaranijo.overlay=1" in words and "root=LABEL=RASPIROOT" in words
    # systemd.run= would replace the boot's goal (multi-user.target): the kit must boot as is
    assert "systemd.run" not in line and "systemd.unit" not in line


def test_boot_test_judges_the_selftest_per_device() -> None:
    """The boot test passes only when the attached emulated devices pass, the absent ones
    are reported missing with a reason, and the image keeps its promises."""
    boot_test = load(BOOT_TEST, "jaranijo_boot_test")
    checks = {name: "pass" for name in boot_test.EXPECT_PASS}
    checks.update(camera="fail", battery="fail", gpio="skip", key_security="fail")
    notes = {"camera": "camera could not be opened", "battery": "battery_missing",
             "gpio": "held by the kiosk", "key_security": "software"}
    good = {"ok": 1, "res": {"checks": checks, "notes": notes}}
    assert boot_test.judge_selftest(good) == []
    for name, status in (("fingerprint", "skip"), ("root_overlay", "fail"), ("ssh", "fail")):
        bad = {"res": {"checks": {**checks, name: status}, "notes": notes}}
        (problem,) = boot_test.judge_selftest(bad)
        assert problem.startswith(f"{name}: {status}")
    silent = {"res": {"checks": {**checks, "camera": "pass"}, "notes": notes}}
    assert boot_test.judge_selftest(silent) == [
        "camera: pass, expected reported missing"]
    assert "services: not reported ()" in boot_test.judge_selftest(
        {"res": {"checks": {k: v for k, v in checks.items() if k != "services"},
                 "notes": notes}})


def test_mmdebstrap_command_and_configure_steps_are_valid_shell(
        build: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assemble the rootfs command without running it, and the configure stage's steps;
    every hook and step must parse as sh."""
    captured: list[list[str]] = []

    def fake_run(stage: str, cmd: list[str], **kwargs: object) -> None:
        captured.append(cmd)
        raise SystemExit(0)

    monkeypatch.setattr(build, "run", fake_run)
    (tmp_path / "native-build.txt").write_text("tpm2-pytss>=2.3\nlgpio>=0.2\n")
    (tmp_path / "native-needs.txt").write_text("setuptools>=44\npkgconfig\nsetuptools>=44\n")
    opts = build.Options(out=tmp_path, work=tmp_path, mirror="http://deb.debian.org/debian",
                         suite="bookworm", python=sys.executable, data_mib=64, boot_mib=64,
                         stages=["rootfs"], name="t")
    with pytest.raises(SystemExit):
        build.stage_rootfs(opts)
    cmd = captured[0]
    assert cmd[:4] == ["mmdebstrap", "--mode=root", "--architectures=arm64", "--variant=apt"]
    assert cmd[-3:] == ["bookworm", str(tmp_path / "rootfs"), "http://deb.debian.org/debian"]
    assert "raspi-firmware" in next(a for a in cmd if a.startswith("--include="))
    assert "swig" in next(a for a in cmd if a.startswith("--include="))
    hooks = [a.split("=", 1)[1] for a in cmd if a.startswith("--essential-hook=")]
    steps = build.configure_hooks(opts)
    assert any("configure.sh" in h for h in steps)
    # the native sources: build requirements first (once each), then compiled offline
    assert sum(h.endswith("/tmp/native-wheels pkgconfig 'setuptools>=44'")
               for h in steps) == 1
    native = next(h for h in steps if "tpm2-pytss" in h)
    assert "--no-index" in native and "--no-build-isolation" in native
    assert "env -i" in native  # the build PC's pip and CA settings stay out of the chroot
    assert any("*.tar.gz" in h for h in steps)  # the sources reach the chroot too
    for hook in hooks + steps:
        subprocess.run(["sh", "-n", "-c", hook], check=True)


FAKE_CHROOT = """#!/bin/sh
# chroot ROOT CMD...: records the command; `pip wheel ... -w DIR REQ` makes REQ's wheel
root=$1; shift
echo "$*" >> "$CALLS"
case "$*" in
  *"/pip wheel "*) mkdir -p "$root/tmp/native-wheels"
                   touch "$root/tmp/native-wheels/tpm2_pytss-3.0.0-cp311-cp311-linux_aarch64.whl";;
esac
"""


def test_a_native_requirement_is_compiled_once_and_its_wheel_kept_for_a_rerun(
        build: ModuleType, tmp_path: Path) -> None:
    """The configure stage purges the build tools, so a re-run over the kept rootfs could
    not compile again: the first run keeps the arm64 wheel in work/native-wheels, a second
    run (a root without the tools) installs that wheel and compiles nothing."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "native-build.txt").write_text("tpm2-pytss>=2.3\n")
    opts = build.Options(out=tmp_path, work=work, mirror="http://deb.debian.org/debian",
                         suite="bookworm", python=sys.executable, data_mib=64, boot_mib=64,
                         stages=["configure"], name="t")
    steps = build.configure_hooks(opts)
    copy = next(h for h in steps if "native-wheels" in h and "chroot" not in h)
    native = next(h for h in steps if "pip wheel" in h)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chroot").write_text(FAKE_CHROOT)
    (bin_dir / "chroot").chmod(0o755)
    calls = tmp_path / "calls"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", CALLS=str(calls))
    for run, root in enumerate((tmp_path / "root1", tmp_path / "root2")):
        (root / "tmp").mkdir(parents=True)
        calls.write_text("")
        for step in (copy, native):
            subprocess.run(["sh", "-c", step, "sh", str(root)], check=True, env=env)
        done = calls.read_text().splitlines()
        wheels = [line for line in done if "/pip wheel " in line]
        installs = [line for line in done if "/pip install " in line]
        assert len(wheels) == (1 if run == 0 else 0), done
        assert len(installs) == 1 and "--find-links /tmp/native-wheels" in installs[0]
        assert installs[0].endswith("tpm2-pytss>=2.3")
        assert (root / "tmp" / "native-wheels").is_dir()
    assert [w.name for w in (work / "native-wheels").iterdir()] == [
        "tpm2_pytss-3.0.0-cp311-cp311-linux_aarch64.whl"]
    assert not (work / "native-failed.txt").exists()


def test_an_interrupted_builds_mounts_stop_the_rootfs_stage(build: ModuleType,
                                                             tmp_path: Path) -> None:
    """A killed mmdebstrap may leave /proc, /sys and /dev mounted in the old root: removing
    that folder would delete through them, so the stage names each mount and stops."""
    root = tmp_path / "work" / "rootfs"
    mounts = (f"proc {root}/proc proc rw 0 0\n"
              f"sysfs {root}/sys sysfs rw 0 0\n"
              f"tmpfs {tmp_path}/work/rootfs-other tmpfs rw 0 0\n"
              f"/dev/vda1 / ext4 rw 0 0\n")
    assert build.mounted_under(root, mounts) == [f"{root}/proc", f"{root}/sys"]
    assert build.mounted_under(root, "/dev/vda1 / ext4 rw 0 0\n") == []


def test_boot_test_provisioning_file_is_one_the_kit_accepts(tmp_path: Path) -> None:
    """The file --office writes for the guest passes the kit's own first-boot parser, dials
    the slirp gateway (the host's loopback) over TLS and names the guest's USB ports."""
    from kit.firstboot import parse_provision_file
    from sync.envelope import OfficeKeys

    boot_test = load(BOOT_TEST, "jaranijo_boot_test")
    OfficeKeys.generate().save(tmp_path)
    ca = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n"
          "-----END CERTIFICATE-----\n")
    path = tmp_path / "jaranijo-provision.toml"
    path.write_text(boot_test.provision_toml(kit_id=boot_test.KIT_ID, port=40123,
                                             password="kata-sandi-uji", ca_pem=ca,
                                             code="4829135071", technician_pin="97531864",
                                             devices=True))
    spec = parse_provision_file(path)
    assert (spec.kit_id, spec.host, spec.port) == (boot_test.KIT_ID, boot_test.GUEST_GATEWAY,
                                                   40123)
    assert spec.ca_pem.strip() == ca.strip()
    assert [o.id for o in spec.officers] == [boot_test.OFFICER]
    assert {name: spec.settings["devices"][name]["port"] for name in boot_test.GUEST_PORTS} \
        == boot_test.GUEST_PORTS


def test_sdist_requirements_are_build_and_runtime_without_extras(build: ModuleType,
                                                                 tmp_path: Path) -> None:
    """A package compiled in the chroot gets its build backend and runtime dependencies as
    wheels beforehand (the chroot is offline); a dev extra is not fetched."""
    import io
    import tarfile

    sdist = tmp_path / "demo_native-1.0.tar.gz"
    files = {
        "demo_native-1.0/pyproject.toml": b'[build-system]\nrequires = ["setuptools>=61", '
                                          b'"pkgconfig"]\n',
        "demo_native-1.0/PKG-INFO": b"Name: demo-native\nRequires-Dist: cffi>=1.0\n"
                                    b"Requires-Dist: pytest; extra == \"dev\"\n"
                                    b"Requires-Dist: packaging; python_version >= \"3.8\"\n",
        "demo_native-1.0/src/deep/PKG-INFO": b"Requires-Dist: not-this-one\n",
    }
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert build.sdist_requirements(sdist) == ["setuptools>=61", "pkgconfig", "cffi>=1.0",
                                               "packaging"]


def test_the_image_holds_the_committed_tree_and_names_its_commit(build: ModuleType,
                                                                  tmp_path: Path) -> None:
    if not (IMAGE_BUILD.parent / ".git").exists():
        pytest.skip("not a git checkout")
    commit = build.export_source(tmp_path / "src")
    head = subprocess.run(["git", "-C", str(IMAGE_BUILD.parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert commit == head
    assert (tmp_path / "src" / "pyproject.toml").exists()
    assert not (tmp_path / "src" / "tests").exists()
    assert not (tmp_path / "src" / ".venv").exists()


def test_overlay_hook_needs_no_grep_or_sed_and_rewrites_fstab(build: ModuleType,
                                                             tmp_path: Path) -> None:
    """The initramfs has klibc's tools, not busybox: the first boot under QEMU showed
    'grep: not found' and a root left writable. The hook uses shell builtins only; run
    against a stand-in root it drops the root's fstab line and keeps the others."""
    hook = build.OVERLAY_HOOK
    code = [ln for ln in hook.splitlines() if not ln.lstrip().startswith("#")]
    assert not any(re.search(r"\b(grep|sed|awk)\b", ln) for ln in code)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "fstab").write_text("LABEL=RASPIROOT / ext4 ro 0 1\n"
                                        "LABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n")
    # only the fstab part: from the line that names it to the end
    tail = hook[hook.index('fstab="${rootmnt}/etc/fstab"'):]
    subprocess.run(["sh", "-c", tail], check=True, env={"rootmnt": str(root),
                                                        "PATH": "/usr/bin:/bin"})
    assert (root / "etc" / "fstab").read_text() == (
        "# root: overlay (jaranijo.overlay=1)\nLABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n")

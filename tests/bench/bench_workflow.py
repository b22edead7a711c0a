"""Time the kit itself adds to one bedside recording, and a recording's peak memory.

``python -m tests.bench.bench_workflow``. A full recording (2 photos, ten
fingers, signature, witness, seal) runs through the real workflow and the
real drivers against the emulated devices. The emulated person places each
finger after ``place_delay`` seconds: that is the person's time and is
subtracted. What remains is the kit's own time (camera, image transfer over
the UART, quality checks, encrypted drafts, sealing), compared with the
SOP's 30-minute budget for one cooperative resident (SOP step 10). The
baseline in the same run is the UART wire time alone for the ten images.
"""

from __future__ import annotations

import resource
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from kit.devices import KitDevices
from kit.provision import open_vault, provision_kit
from kit.records import store_assignment
from kit.scripted_visit import synthetic_signature
from kit.store import Store
from kit.visit import render_strokes
from kit.workflow import KitContext, RecordingFlow
from sensors.emulated.rig import EmulatedRig
from sensors.fingerprint import wire_seconds
from sensors.photo_quality import PHOTO_THRESHOLD, assess_photo
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment, FingerPosition, PhotoCapture
from sync.envelope import OfficeKeys, OfficePublicKeys

SOP_BUDGET_S = 30 * 60


def one_recording(baud: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        OfficeKeys.generate().save(root / "office")
        rig = EmulatedRig(root / "devices", fingerprint_baud=baud, control_fifo=False)
        rig.start()
        try:
            paths = rig.paths
            done = provision_kit(
                kit_id="bench-kit", data_dir=root / "kit", office_public=root / "office",
                officer="P-0001", pin="4829135071", settings={"devices": {
                    "fingerprint": {"port": str(paths["fingerprint"]), "baud": baud},
                    "gnss": {"port": str(paths["gps"])},
                    "battery": {"kind": "sysfs", "sysfs_dir": str(paths["power_supply"])},
                    "camera": {"kind": "emulated"}}})
            config = done.config
            place_delay = rig.devices["fingerprint"].place_delay
            assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text("utf-8"))
            devices = KitDevices.open(config)
            store = Store.open(config.store_path)
            try:
                vault = open_vault(config, store)
                key = vault.unlock("P-0001", "4829135071")
                store_assignment(store, key, assignment)
                target = assignment.targets[0]
                ctx = KitContext(store=store, data_key=key,
                                 signer=vault.signing_key(key),
                                 office=OfficePublicKeys.load(config.keys_dir),
                                 kit_id="bench-kit", officers=["P-0001"],
                                 gnss_fix=devices.gnss_fix, devices=devices.identities)
                tracemalloc.start()
                start = time.perf_counter()
                flow = RecordingFlow.start(ctx, target)
                for _ in range(2):
                    still = devices.camera.capture()
                    q = assess_photo(still.rgb).quality
                    flow.add_photo(PhotoCapture(jpeg=still.jpeg, width=640, height=480,
                                                quality_score=q.score,
                                                quality_threshold=PHOTO_THRESHOLD,
                                                below_threshold_reason=None,
                                                captured_at=ctx_now()))
                flow.accept_photo("bench")
                flow.approve_photo(True)
                person = 0.0
                for position in FingerPosition:
                    rig.control("fingerprint", "person", target.id)
                    rig.control("fingerprint", "finger", str(int(position)))
                    devices.fingerprint.wait_for_finger()
                    person += place_delay
                    image = devices.fingerprint.capture()
                    flow.add_finger(position, image.png,
                                    devices.fingerprint.quality(image).score)
                    rig.control("fingerprint", "lift")
                flow.next()
                strokes = synthetic_signature()
                flow.sign(strokes, render_strokes(strokes))
                flow.set_witness("Sulastri", "perangkat desa", True)
                seal_start = time.perf_counter()
                stored = flow.seal()
                end = time.perf_counter()
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            finally:
                store.close()
                devices.close()
        finally:
            rig.stop()
    total = end - start
    return {"total": total, "person": person, "kit": total - person,
            "wire": 10 * wire_seconds(baud), "seal": end - seal_start,
            "peak_mb": peak / 1e6, "record_kb": stored.size / 1e3}


def ctx_now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    print("one full recording (2 photos, 10 fingers, signature, witness, seal), emulated devices")
    print(f"{'baud':>7} {'total s':>8} {'person s':>9} {'kit s':>7} {'UART s':>7} "
          f"{'kit/UART':>9} {'kit/SOP':>8} {'seal ms':>8} {'peak MB':>8} {'record kB':>10}")
    for baud in (57600, 115200):
        r = one_recording(baud)
        print(f"{baud:>7} {r['total']:8.1f} {r['person']:9.1f} {r['kit']:7.1f} {r['wire']:7.1f} "
              f"{r['kit'] / r['wire']:9.2f} {r['kit'] / SOP_BUDGET_S:8.1%} "
              f"{r['seal'] * 1e3:8.0f} {r['peak_mb']:8.1f} {r['record_kb']:10.0f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {rss:.0f} MB (Python, OpenCV, the emulators and the drivers)")


if __name__ == "__main__":
    main()

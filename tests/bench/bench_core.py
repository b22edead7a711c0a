"""Seal + sign + store of a 2 MB record, the Argon2id unlock cost, and a TPM slot's unlock.

``python -m tests.bench.bench_core``. Baselines measured in the same run:
hashing the same bytes (SHA-256) and storing them unsealed in the same
store, so the ratios say what sealing adds on this machine.

Argon2id parameters: the officer types a PIN at every unlock, so the wait
must stay near half a second on the slowest kit (Raspberry Pi 4), while
each guess costs an attacker who copied the SD card as much as possible.
Memory is the cost that hurts GPUs; 64 MiB is safe on a 2 GB Pi next to
the kiosk. The run prints the time at several settings; the Pi 4 figure
is the measured x86 figure times the ratio noted below, until a bench Pi
measures it directly (``python -m tests.bench.bench_core`` on the Pi).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from sync.envelope import KitKeys, OfficeKeys, open_sealed, seal

RECORD_BYTES = 2 * 1024 * 1024
REPEATS = 7


def timed(fn, repeats: int = REPEATS) -> float:
    """Median seconds of ``repeats`` runs."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    office, kit = OfficeKeys.generate(), KitKeys.generate()
    payload = {"photo": os.urandom(RECORD_BYTES // 2), "fingers": os.urandom(RECORD_BYTES // 2)}
    mb = RECORD_BYTES / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "kit.db")
        counter = iter(range(10**6))

        def seal_sign_store() -> None:
            blob = seal(payload, kind="recording",
                        ids={"record_id": f"r{next(counter)}", "kit_id": "bench"},
                        recipient=office.seal_public, signer=kit.sign)
            store.save_sealed(f"s{next(counter)}", "recording", "t", blob)

        def store_only() -> None:
            store.save_sealed(f"p{next(counter)}", "recording", "t",
                              payload["photo"] + payload["fingers"])

        blob = seal(payload, kind="recording", ids={"record_id": "x", "kit_id": "bench"},
                    recipient=office.seal_public, signer=kit.sign)
        t_hash = timed(lambda: hashlib.sha256(payload["photo"] + payload["fingers"]).digest())
        t_seal = timed(lambda: seal(payload, kind="recording",
                                    ids={"record_id": "x", "kit_id": "bench"},
                                    recipient=office.seal_public, signer=kit.sign))
        t_open = timed(lambda: open_sealed(blob, recipient=office.seal, sender=kit.sign_public))
        t_store = timed(store_only)
        t_total = timed(seal_sign_store)
        print(f"record size                       {mb:8.2f} MB (sealed {len(blob) / 1e6:.2f} MB,"
              f" overhead {len(blob) - RECORD_BYTES} B)")
        print(f"baseline SHA-256 of the bytes     {t_hash * 1e3:8.1f} ms  {mb / t_hash:7.0f} MB/s")
        print(f"baseline store unsealed (fsync)   {t_store * 1e3:8.1f} ms"
              f"  {mb / t_store:7.0f} MB/s")
        print(f"seal + sign                       {t_seal * 1e3:8.1f} ms  {mb / t_seal:7.0f} MB/s"
              f"  ({t_seal / t_hash:.1f}x SHA-256)")
        print(f"seal + sign + durable store       {t_total * 1e3:8.1f} ms  {mb / t_total:7.0f} MB/s"
              f"  ({t_total / t_store:.2f}x unsealed store)")
        print(f"office open (verify + decrypt)    {t_open * 1e3:8.1f} ms")

        print("\nArgon2id unlock (median of 5):")
        for ops, mib in ((2, 64), (3, 64), (4, 64), (3, 128), (3, 256)):
            vault = PinVault(store, Argon2Cost(ops, mib * 1024 * 1024))
            store.conn.execute("DELETE FROM key_slots")
            vault.initialise("bench", "4829135071")
            t = timed(lambda v=vault: v.unlock("bench", "4829135071"), repeats=5)
            default = "  <- default" if (ops, mib) == (3, 64) else ""
            print(f"  opslimit {ops}  memlimit {mib:4d} MiB   {t * 1e3:7.1f} ms here{default}")
        vault = PinVault(store, Argon2Cost())
        store.conn.execute("DELETE FROM key_slots")
        vault.initialise("bench", "4829135071")
        argon2_default = timed(lambda: vault.unlock("bench", "4829135071"), repeats=5)
        bench_tpm_unlock(store, Path(tmp), argon2_default)
        store.close()
    print("Pi 4 estimate (not measured here): libsodium has SIMD Argon2 code for x86 but only"
          " portable code for ARM, so assume 5-8x this machine's figure; measure on a bench Pi.")


def bench_tpm_unlock(store: Store, tmp: Path, argon2_default: float) -> None:
    """A TPM slot's unlock (swtpm here) against the default Argon2id slot, same run.

    swtpm answers over a local socket at CPU speed; an SPI TPM module is slower per
    command (an SLB 9670 takes tens of milliseconds for an unseal), so on a kit the TPM
    figure is a floor, not the figure itself.
    """
    import shutil

    from kit.tpm import SoftwareTpm

    if shutil.which("swtpm") is None:
        print("\nTPM unlock: swtpm not installed, not measured")
        return
    tpm = SoftwareTpm(tmp / "tpm")
    tpm.start()
    try:
        vault = PinVault(store, Argon2Cost(), tcti=tpm.tcti)
        store.conn.execute("DELETE FROM key_slots")
        vault.initialise("bench", "482913")
        t = timed(lambda: vault.unlock("bench", "482913"), repeats=9)
        print(f"\nPIN unlock, default Argon2id slot (3 x 64 MiB)  {argon2_default * 1e3:7.1f} ms")
        print(f"PIN unlock, TPM slot (swtpm, salted session)    {t * 1e3:7.1f} ms"
              f"  ({t / argon2_default:.3f}x Argon2id)")
    finally:
        tpm.stop()


if __name__ == "__main__":
    main()

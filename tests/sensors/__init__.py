"""Device tests: each driver against its byte-accurate emulated twin on a pty (HIL).

The hardware-in-the-loop tests (marked ``hil``) take their device from the fixtures in
``tests/conftest.py``: emulated by default; on a bench, ``--fingerprint-port``,
``--gps-port``, ``--modem-port`` or ``--bench-config bench.toml`` point the same tests at
the real devices, and those that need the emulator's fault controls are skipped. Fuzz
tests feed the parsers and drivers random and mutated bytes.
"""

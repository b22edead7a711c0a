"""The test suite, laid out as the packages are; ``tests/conftest.py`` holds the one rig.

``sensors/`` devices, ``sync/`` the shared contract, ``kit/`` the kit's core, ``office/``
the office's database, ``link/`` kit and office over a real Mosquitto, ``ui/`` the kiosk
under Xvfb, ``demo/`` the README's demo; ``bench/`` holds benchmarks, not tests. Tests
wait with :func:`tests.waiting.wait_until`, never a sleep that stands in for a condition.
"""

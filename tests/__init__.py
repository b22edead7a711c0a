"""The test suite, laid out as the packages are; ``tests/conftest.py`` holds the one rig.

``sensors/`` devices, ``sync/`` the shared contract, ``kit/`` the kit's core, ``office/``
the office's database, ``link/`` kit and office over a real Mosquitto, ``ui/`` the kiosk
under Xvfb, ``demo/`` the README's demo; ``bench/`` holds benchmarks, not tests. Tests
wait with :func:`tests.waiting.wait_until`, never a sleep that stands in for a condition.
"""

# The fixture kit's officer, PIN and technician PIN (``tests/conftest.py`` provisions it),
# here rather than in conftest so that the kiosk's test scenarios, which run in the
# kiosk's own process, import no pytest: the memory bench measures that process.
OFFICER, PIN = "P-0001", "4829135071"
TECHNICIAN_PIN = "97531864"  # the fixture kit's technician menu PIN (provisioning hashes it)

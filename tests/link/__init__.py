"""The kit agent and the office over a real Mosquitto (``tests/link/harness.py``): broker
ACL, presence and last will, store-and-forward of records through outages and kills,
signed commands, sealed assignments and telemetry from the emulated rig's GNSS, modem and
battery. Each test gets its own broker; the agent runs as the service runs it, in its own
process. Skipped where ``mosquitto`` is not installed.
"""

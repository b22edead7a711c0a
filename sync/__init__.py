"""What kit and office agree on: the records they exchange, the envelope, the MQTT protocol.

Pure code, shared by both ends and importing neither: ``domain`` (targets
with the NIK/KK rules, assignments, recordings), ``envelope`` (key files,
seal, sign, open), ``protocol`` (topics, payloads, ACL, backoff), ``errors``
(faults in both languages) and ``cli`` (the ``jaranijo`` command line that
every package adds its subcommands to). No threads, no store, no devices.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jaranijo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

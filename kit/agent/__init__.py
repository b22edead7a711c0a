"""The kit agent: the systemd service (``jaranijo agent``) that links one kit to the office.

It runs beside the kiosk, so the office keeps seeing a kit whose kiosk is
restarting, and it alone holds the modem and GNSS ports. Over MQTT it reports
where the kit is and how it is (by exception, and on a timer set by what the
kit is doing), keeps a compact track while offline, uploads the sealed records
in the outbox until the office's signed receipt, keeps the office's
assignments still sealed for the kiosk, and runs the office's signed commands.
sync/PROTOCOL.md has the topics, payloads, timings and settings.

One file per job:

* :mod:`kit.agent.settings` -- the ``[agent]`` settings, checked key by key;
* :mod:`kit.agent.sampling` -- reading GNSS, modem and battery into snapshots;
* :mod:`kit.agent.reporting` -- what to report when, and the offline track (pure);
* :mod:`kit.agent.uploader` -- store-and-forward of sealed records;
* :mod:`kit.agent.service` -- the MQTT service: connection, presence, assignments,
  commands, systemd; :func:`kit.agent.service.run_agent` is the entry point.

The agent shares the GNSS fix and the modem's view with the kiosk through the
store (:mod:`kit.shared_readings`).

>>> from kit.agent.service import run_agent
>>> run_agent("/etc/jaranijo/kit.toml")   # until SIGTERM                  # doctest: +SKIP
"""

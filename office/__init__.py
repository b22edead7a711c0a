"""The office end: receiving, storing and opening what kits send, and sending them work.

``db`` the office database (migrated SQLite), ``ingest`` the MQTT service
that receives from kits, ``outbound`` what the office sends them,
``records`` opening a sealed record, ``cli`` the ``jaranijo office``
commands, ``broker`` a local Mosquitto for tests and the demo.

Built on ``sync/`` only (never on the kit's runtime or its devices), so an
office PC runs it without a kit's hardware or store.
"""

"""The office end: receiving, storing and opening what kits send, sending them work, and
the web app where office staff watch the fleet.

A Django application (``apps.py``): ``models`` are the office database's tables, their
``migrations`` its schema; ``db`` the ingest's fast SQL over them (SQLite or PostgreSQL);
``ingest`` the MQTT service that receives from kits; ``outbound`` what the office sends
them; ``records`` opening a sealed record; ``web`` the web app (settings, pages,
templates, vendored static files); ``cli`` the ``jaranijo office`` commands; ``broker`` a
local Mosquitto and ``certs`` its CA, for the demo, the tests and an office PC.

Built on ``sync/`` only (never on the kit's runtime or its devices), so an office PC runs
it without a kit's hardware or store.
"""

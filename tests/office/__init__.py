"""The office side on its own: its database (schema, migrations, re-opening) as
``office serve`` and the office command line open it. The office over a real broker,
with kits, is in ``tests/link``.
"""

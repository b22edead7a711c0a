"""The office end: receiving, storing and opening what kits send, and sending them work.

Built on ``sync/`` only (never on the kit's runtime or its devices), so an
office PC runs it without a kit's hardware or store.
"""

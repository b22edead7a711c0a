"""The kit's runtime, above ``sync/`` (what it shares with the office) and ``sensors/`` (devices).

Configuration, the store, the PIN vault and officer session, provisioning,
the recording workflow, the one visit controller that the kiosk and
scripted visits both drive, and the agent (the kit's link to the office).
"""

"""The README's first command: ``jaranijo demo --headless`` runs the whole story (office,
kit, emulated devices, a visit to a sealed record) end to end. Needs ``mosquitto``.
"""

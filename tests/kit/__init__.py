"""The kit's core: configuration and command line, PIN vault, store, records, session,
the recording workflow, crash safety (SIGKILL mid-write) and whole visits through
``jaranijo record`` with power cuts. Visits run on ``kit_on_rig`` (``tests/conftest.py``):
a provisioned kit whose devices are all emulated, never a bench's real ones.
"""

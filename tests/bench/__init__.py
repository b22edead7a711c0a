"""Benchmarks, not tests (pytest collects nothing here): ``python -m tests.bench [NAME]``
prints figures, each against a baseline measured in the same run, for sealing and the
Argon2 unlock, the serial parsers, the fingerprint download, the workflow, the link,
photo quality and the kiosk UI.
"""

"""The contract kit and office share (:mod:`sync`): domain rules (NIK, KK, assignments,
recordings), key files and sealed envelopes, and the wire protocol's payloads. Pure code:
no devices, no broker, nothing that needs a bench.
"""

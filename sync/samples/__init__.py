"""Sample data of fictional residents for the demo and the tests.

See ``sync.domain.SAMPLE_ASSIGNMENT_PATH``.
"""

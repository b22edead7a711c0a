"""Sample data of fictional residents for the demo and the tests.

See ``kit.domain.SAMPLE_ASSIGNMENT_PATH``.
"""

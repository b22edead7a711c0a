"""Sample data of fictional residents, for the demo and the tests."""

from __future__ import annotations

from pathlib import Path


def sample_assignment_path() -> Path:
    """A sample assignment: invented residents of real villages in Kabupaten Blitar."""
    return Path(__file__).with_name("assignment_kanigoro.json")

"""Fixtures for the link tests: a real Mosquitto per test (see :mod:`tests.link.harness`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from office.broker import MOSQUITTO
from tests.link.harness import LinkWorld


@pytest.fixture
def world(tmp_path: Path) -> Iterator[LinkWorld]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    link = LinkWorld(tmp_path)
    link.broker.start()
    try:
        yield link
    finally:
        link.close()

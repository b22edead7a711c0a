"""The page's language and the office's clock, as every page module shows them.

``lang()`` is ``"id"`` or ``"en"`` for the texts that carry both (:mod:`sync.errors`,
:mod:`office.target_import`, :mod:`office.letters`); ``local(t)`` turns a Unix time from
the database into the office's (WIB) local time, None staying None.
"""

from __future__ import annotations

import datetime as dt
from typing import overload

from django.utils import timezone, translation


def lang() -> str:
    """The active language as the two codes the bilingual messages know."""
    return "en" if (translation.get_language() or "id").startswith("en") else "id"


@overload
def local(t: float) -> dt.datetime: ...
@overload
def local(t: None) -> None: ...
def local(t: float | None) -> dt.datetime | None:
    """Unix seconds as an aware datetime in the office's time zone (WIB)."""
    if t is None:
        return None
    return timezone.localtime(dt.datetime.fromtimestamp(t, tz=dt.UTC))

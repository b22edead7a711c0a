"""The office web app's addresses: each page module brings its own ``urlpatterns``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from django.views.i18n import set_language

urlpatterns: list[URLPattern | URLResolver] = [
    path("i18n/setlang/", set_language, name="set_language"),
    # Each page module adds one line here: path("", include("office.web.<module>")).
]

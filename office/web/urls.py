"""The office web app's addresses: each page module brings its own ``urlpatterns``."""

from __future__ import annotations

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.i18n import set_language
from django.views.static import serve

urlpatterns: list[URLPattern | URLResolver] = [
    path("i18n/setlang/", set_language, name="set_language"),
    # The app serves its own (vendored) static files: an office PC runs no web server.
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATICFILES_DIRS[0]}),
    # Each page module adds one line here: path("", include("office.web.<module>")).
    path("", include("office.web.fleet")),
    path("", include("office.web.commands")),
    path("", include("office.web.accounts")),
    path("", include("office.web.alerts")),
    path("", include("office.web.clock")),
    path("", include("office.web.records")),
    path("", include("office.web.export")),
    path("", include("office.web.requests")),
    path("", include("office.web.schedule")),
    path("", include("office.web.replies")),
    path("", include("office.web.checkout")),
]

"""A Content Security Policy on every response: scripts, styles and images from the app
itself only (htmx and Leaflet are vendored), plus the map tile host when one is set."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        tiles = urlsplit(settings.MAP_TILE_URL.replace("{s}", "a"))
        extra = f" {tiles.scheme}://{tiles.netloc}" if tiles.netloc else ""
        self.policy = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                       f"img-src 'self' data:{extra}; connect-src 'self'; "
                       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy)
        return response

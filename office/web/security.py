"""A Content Security Policy on every response: scripts, styles and images from the app
itself only (htmx and Leaflet are vendored), plus the map tile host when one is set; and
the refusals written to the audit log that Django itself makes: a failed CSRF check
(:func:`csrf_failure`) and a session cookie that matches no session
(:class:`UnknownSessionAudit`)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


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


# -- refused requests, written to the audit log ---------------------------------------------
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a POST without a valid CSRF token (a forged form on another
    site, a stale page) is refused with a plain 403 page in the user's language, and the
    refusal is written to the audit log (issue 11, Bad input: "refused, logged, nothing
    shown"). Django's ``reason`` (e.g. "CSRF token missing.") names no one; the form's
    fields are never read."""
    from office.web.audit import audit

    audit(request, "csrf_failure", subject=request.path[:200], detail=str(reason)[:200])
    return render(request, "accounts/csrf_failure.html", status=403)


class UnknownSessionAudit:
    """Write one audit entry for a request whose session cookie resolves to no session:
    forged, tampered with, or expired (the user is then anonymous and, for a page that
    needs a login, sent to it). The cookie's value is not logged. Django's session
    middleware deletes such a cookie in its answer, so a browser leaves one entry, not
    one a request for ever. Loading the session here is the load a page makes anyway (it
    is cached on ``request.session``); static files, which need none, are not looked at."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.COOKIES.get(settings.SESSION_COOKIE_NAME) and \
                not request.path.startswith(settings.STATIC_URL):
            session = request.session
            session.keys()  # loads it; an unknown or expired key becomes None
            if session.session_key is None:
                from office.web.audit import audit

                audit(request, "bad_session", subject=request.path[:200],
                      detail="session cookie matches no session (forged or expired)")
        return self.get_response(request)

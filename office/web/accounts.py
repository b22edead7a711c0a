"""Logging in and out of the office web app, and the lockout after five wrong passwords.

``/login/`` is Django's login view with the office's form and page; ``/logout/`` takes a
POST only (a link or an image cannot log anyone out). django-axes counts failures per
user name and address: after five, even the right password is refused for a quarter of
an hour, and :func:`lockout_response` says until when. There is no default account: the
first administrator is made with ``jaranijo office createadmin``, which the login page
names while no user exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from office.web.audit import audit_page


class OfficeLoginForm(AuthenticationForm):
    """Django's login form, speaking Bahasa Indonesia first."""

    error_messages: ClassVar[dict[str, Any]] = {
        "invalid_login": _("Nama pengguna atau kata sandi salah."),
        "inactive": _("Akun ini dinonaktifkan. Hubungi administrator."),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Nama pengguna")
        self.fields["password"].label = _("Kata sandi")


class OfficeLoginView(LoginView):
    template_name = "accounts/login.html"
    form_class = OfficeLoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["no_users"] = not get_user_model().objects.exists()
        return context


def locked_until(request: HttpRequest, username: str) -> datetime:
    """When the lockout of ``username`` from this address ends (axes' expiry of it)."""
    from axes.helpers import get_cool_off
    from axes.models import AccessAttempt

    attempt = (AccessAttempt.objects.filter(
        username=username, ip_address=request.META.get("REMOTE_ADDR"))
        .select_related("expiration").order_by("-attempt_time").first())
    expiration = getattr(attempt, "expiration", None) if attempt is not None else None
    if expiration is not None and expiration.expires_at is not None:
        return expiration.expires_at  # type: ignore[no-any-return]
    base = attempt.attempt_time if attempt is not None else timezone.now()
    return base + (get_cool_off(request) or timedelta(minutes=15))  # type: ignore[no-any-return]


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The page axes shows instead of the login result while a user name is locked out
    (``AXES_LOCKOUT_CALLABLE``): the login form again, with the time to try again."""
    username = str(request.POST.get("username", ""))[:150]
    until = timezone.localtime(locked_until(request, username))
    form = OfficeLoginForm(request, initial={"username": username})
    return render(request, "accounts/login.html", {
        "form": form, "locked_until": until, "no_users": False,
        "next": request.POST.get("next", ""),
    }, status=429)


urlpatterns: list[URLPattern] = [
    path("login/", OfficeLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(http_method_names=["post", "options"]), name="logout"),
    path("audit/", audit_page, name="audit"),
]

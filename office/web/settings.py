"""Django settings of the office: one place, read from the environment.

- ``JARANIJO_OFFICE_DATA``: the office's folder (default ``/var/lib/jaranijo-office``):
  ``office.db`` (embedded SQLite) and ``secret-key`` live there.
- ``JARANIJO_OFFICE_DB``: the database, a SQLite file path or a
  ``postgresql://user@host:port/dbname`` URL (default: ``office.db`` in the folder).
- ``JARANIJO_OFFICE_HTTPS=1`` when the app is served over HTTPS (secure cookies, HSTS).
- ``JARANIJO_OFFICE_HOSTS``: comma-separated host names the app answers to
  (default ``localhost,127.0.0.1``).
- ``JARANIJO_OFFICE_TILES``: a map tile URL template; empty (the default) draws kits on a
  plain background, as an office PC without internet needs.
- ``JARANIJO_OFFICE_KEYS``: the office keys folder (``office-sign.key``) with which the kit
  page signs commands; unset, the page shows commands but cannot send them.
- ``JARANIJO_OFFICE_KITS``: the kits' public key folders (as ``office serve --kits``): with
  the keys folder, the record pages open stored records (in memory only).
- ``JARANIJO_OFFICE_BROKER``: the broker's folder (``passwd``, ``acl``, ``mosquitto.pid``,
  :class:`office.broker.BrokerAccounts`) where revoking a lost kit removes its login;
  unset, the page says what a technician must do on the broker instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from office.db import database_settings

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("JARANIJO_OFFICE_DATA", "/var/lib/jaranijo-office"))


def _secret_key() -> str:
    """The key that signs sessions and CSRF tokens: from the environment, or made once
    into ``DATA_DIR/secret-key`` (0600) by the web server (``office web`` sets
    ``JARANIJO_OFFICE_WEB``). Other processes (the ingest, the CLI) serve no pages: they
    read the file if there is one, else use a key of their own, and never create folders."""
    if os.environ.get("JARANIJO_OFFICE_SECRET_KEY"):
        return os.environ["JARANIJO_OFFICE_SECRET_KEY"]
    path = DATA_DIR / "secret-key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if os.environ.get("JARANIJO_OFFICE_WEB") != "1":
            return secrets.token_urlsafe(50)
    except OSError:
        return secrets.token_urlsafe(50)
    key = secrets.token_urlsafe(50)
    try:
        DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key + "\n")
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        pass
    return key


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("JARANIJO_OFFICE_DEBUG") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get(
    "JARANIJO_OFFICE_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]
HTTPS = os.environ.get("JARANIJO_OFFICE_HTTPS") == "1"
MAP_TILE_URL = os.environ.get("JARANIJO_OFFICE_TILES", "")
OFFICE_KEYS_DIR = os.environ.get("JARANIJO_OFFICE_KEYS", "")
KITS_DIR = os.environ.get("JARANIJO_OFFICE_KITS", "")
BROKER_DIR = os.environ.get("JARANIJO_OFFICE_BROKER", "")
# The root certificate(s) a signed reply letter must chain to (PEM; BSrE's root in
# production): unset, the reply-letter page refuses to verify signed copies.
TTE_TRUST_ROOTS = os.environ.get("JARANIJO_TTE_ROOTS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "office",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "office.web.security.UnknownSessionAudit",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "office.web.security.ContentSecurityPolicy",
    "axes.middleware.AxesMiddleware",
]

# A refused CSRF check: audited, and a plain 403 page in the user's language.
CSRF_FAILURE_VIEW = "office.web.security.csrf_failure"

ROOT_URLCONF = "office.web.urls"
ASGI_APPLICATION = "office.web.asgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [HERE / "templates"],
    "APP_DIRS": False,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.template.context_processors.i18n",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "office.web.alerts.nav",
        "office.web.clock.clock_counts",
    ]},
}]

DATABASES = {"default": database_settings(
    os.environ.get("JARANIJO_OFFICE_DB") or DATA_DIR / "office.db")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Passwords: Argon2id first (argon2-cffi); the others only to read old hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # login throttling: refuses before checking
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25  # hours: a quarter of an hour after five wrong passwords
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "office.web.accounts.lockout_response"  # the login page, saying until when
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fleet"
LOGOUT_REDIRECT_URL = "login"

# Cookies and headers: a session lives a working day and ends with the browser.
SESSION_COOKIE_AGE = 10 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "id"
LANGUAGES = [("id", "Bahasa Indonesia"), ("en", "English")]
LOCALE_PATHS = [HERE / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Jakarta"  # Kabupaten Blitar: WIB
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [HERE / "static"]
STATIC_ROOT = DATA_DIR / "static"

# Logging is the process's own (``office web`` logs to stdout for journald; the ingest,
# the CLI and the demo configure theirs): Django must not add handlers of its own.
LOGGING_CONFIG = None

"""The ASGI entry point (uvicorn ``office.web.asgi:application``): live pages stream
Server-Sent Events from async views, which a WSGI server cannot hold open cheaply."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.web.settings")
application = get_asgi_application()

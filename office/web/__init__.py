"""The office web app (Django): settings, URLs, pages, templates and vendored static files."""

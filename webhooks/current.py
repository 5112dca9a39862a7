"""The app's services as its views reach them: create_app puts them in the app's extensions."""
from __future__ import annotations

from flask import current_app

from workers.services import Services

EXTENSION = "teachery"


def services() -> Services:
    """The services of the app handling this request."""
    return current_app.extensions[EXTENSION]


def services_of(app) -> Services:
    """The services of `app` (outside a request)."""
    return app.extensions[EXTENSION]

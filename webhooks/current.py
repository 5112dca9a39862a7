"""The app's services as its views reach them: create_app puts them in the app's extensions."""
from __future__ import annotations

from flask import Flask, current_app

from workers.services import Services

EXTENSION = "teachery"


def install(app: Flask, services: Services) -> None:
    app.extensions[EXTENSION] = services


def services() -> Services:
    """The services of the app handling this request."""
    return current_app.extensions[EXTENSION]

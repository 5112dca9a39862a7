"""create_app(services): the Flask application for the receiver, the admin API and health checks."""
from __future__ import annotations

from flask import Flask, jsonify, request

from webhooks import admin, admin_actions, console, current, errors, health, metrics, openapi, receiver, reconciliations
from webhooks.auth import require_admin_token
from webhooks.fast_path import WebhookFastPath
from webhooks.parsing import CourseIdConverter, IdConverter
from webhooks.request_ids import install_request_ids
from workers.services import Services


def refuse_nul_characters():
    """PostgreSQL text cannot hold NUL: an id or query with one is the caller's error, not ours."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return jsonify({"error": "NUL characters are not allowed in paths or query strings"}), 400
    return None


def create_app(services: Services) -> Flask:
    """Build the app on the services the composition root built (teachery_sync/bootstrap.py).
    Refuses to start without a webhook signing secret."""
    settings = services.settings
    settings.require_webhook_secret()

    app = Flask("teachery-sync")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["course"] = CourseIdConverter
    app.extensions[current.EXTENSION] = services.open()

    install_request_ids(app)
    app.before_request(require_admin_token)
    app.before_request(refuse_nul_characters)
    app.register_blueprint(receiver.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    for blueprint in (admin.bp, admin_actions.bp, reconciliations.bp, openapi.bp):
        app.register_blueprint(blueprint, url_prefix="/admin/api")
    console.install(app)
    errors.install(app)

    app.extensions[receiver.EXTENSION] = receiver.Receiver(services)
    app.wsgi_app = WebhookFastPath(app.wsgi_app, app.extensions[receiver.EXTENSION], settings.max_body_bytes)
    return app

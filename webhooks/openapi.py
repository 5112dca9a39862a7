"""The admin API described as OpenAPI 3.1 (`GET /admin/api/openapi.json`), built from the code.

Each operation below names the Flask endpoint that serves it and the pydantic models of its query
string, body and answers (webhooks/schemas.py, workers/commands.py): the document and the code share
those models, and tests/integration/test_openapi.py fails when a route and the document disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from flask import Blueprint, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from domain.ids import ID_PATTERN
from webhooks import schemas
from webhooks.parsing import CourseIdConverter
from workers import commands

PREFIX = "/admin/api"
bp = Blueprint("openapi", __name__)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI's path under PREFIX, e.g. /customers/{customer_id}
    endpoint: str  # the Flask endpoint that serves it
    summary: str
    description: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    answers: dict[int, type[BaseModel] | None] = field(default_factory=dict)  # None: an ErrorAnswer
    tag: str = "customers"


def _errors(*statuses: int) -> dict[int, None]:
    return dict.fromkeys(statuses)


PATH_404 = _errors(404)
OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/customers", "admin.search_customers", "Search customers",
              "Customers whose name or email contains `q`, case-insensitively (at most 100).",
              query=schemas.CustomerSearch, answers={200: schemas.CustomerList, **_errors(400)}),
    Operation("get", "/customers/{customer_id}", "admin.get_customer", "A customer's profile",
              "Enrollments, payments with their refunds, subscriptions and the activity log, newest first.",
              answers={200: schemas.Profile, **PATH_404}),
    Operation("patch", "/customers/{customer_id}", "admin_actions.edit_customer", "Edit name or email",
              "Changes our record and sends the change to the Stripe customer.",
              body=commands.CustomerChanges, answers={200: schemas.Profile, **_errors(400, 404, 409)}),
    Operation("delete", "/customers/{customer_id}", "admin.delete_customer", "Never allowed",
              "Customers are never deleted: always 405.", answers=_errors(405)),
    Operation("get", "/stripe-customers/{cus_id}", "admin.get_stripe_customer", "A profile by Stripe customer id",
              "Without `account`, the platform's own account.",
              query=schemas.StripeCustomerQuery, answers={200: schemas.Profile, **_errors(400, 404)}),
    Operation("post", "/customers/{customer_id}/courses/{course_id}/revoke", "admin_actions.set_course_access",
              "Revoke course access", "Access off; refunds and subscriptions untouched.",
              answers={200: schemas.EnrollmentAnswer, **_errors(404, 409)}),
    Operation("post", "/customers/{customer_id}/courses/{course_id}/grant", "admin_actions.set_course_access",
              "Grant course access", "Access back on; charges nothing.",
              answers={200: schemas.EnrollmentAnswer, **_errors(404, 409)}),
    Operation("post", "/customers/{customer_id}/welcome-email", "admin_actions.welcome_email",
              "Resend the welcome email", "Queues the email with the course login link in the outbox.",
              answers={202: schemas.WelcomeEmailAnswer, **_errors(404, 409)}),
    Operation("get", "/customers/{customer_id}/links", "admin_actions.customer_links", "Course links",
              "Login, password reset (valid 24 hours), billing and cancel-subscription URLs.",
              answers={200: schemas.Links, **PATH_404}),
    Operation("post", "/payments/{charge_id}/refund", "admin_actions.refund_payment", "Refund a payment",
              "Whole or part (`amount` in minor units; default what is left), in Stripe; the refund is "
              "`pending` until Stripe confirms it. Does not revoke access.",
              body=commands.RefundAsked, answers={202: schemas.RefundAnswer, **_errors(400, 402, 404, 409)},
              tag="payments"),
    Operation("post", "/subscriptions/{sub_id}/cancel", "admin_actions.change_subscription", "Cancel a subscription",
              "Now, or at the period's end. Refunds nothing and revokes nothing.",
              body=commands.CancelAsked, answers={202: schemas.SubscriptionAnswer, **_errors(400, 402, 404, 409)},
              tag="subscriptions"),
    Operation("post", "/subscriptions/{sub_id}/pause", "admin_actions.change_subscription",
              "Pause a subscription's collection", "Its invoices are voided, kept as drafts or marked "
              "uncollectible until `resumes_at` or a resume; access goes on.",
              body=commands.PauseAsked, answers={202: schemas.SubscriptionAnswer, **_errors(400, 402, 404, 409)},
              tag="subscriptions"),
    Operation("post", "/subscriptions/{sub_id}/resume", "admin_actions.change_subscription", "Resume collection",
              body=commands.NoBody, answers={202: schemas.SubscriptionAnswer, **_errors(400, 402, 404, 409)},
              tag="subscriptions"),
    Operation("get", "/events", "admin.list_events", "The event ledger",
              "Newest first, `limit` of them (default 100, at most 1000), filtered by what is given.",
              query=schemas.EventFilters, answers={200: schemas.EventList, **_errors(400)}, tag="events"),
    Operation("get", "/events/{event_id}", "admin.get_event", "One event",
              "Its status, attempts, last error, payload and the records it changed.",
              answers={200: schemas.EventDetail, **PATH_404}, tag="events"),
    Operation("post", "/events/{event_id}/replay", "admin.replay_event", "Replay an event",
              "Process it again; a replay asked while another is queued merges into it.",
              answers={202: schemas.ReplayAccepted, **PATH_404}, tag="events"),
    Operation("post", "/reconciliations", "reconciliations.start_reconciliation", "Start a reconciliation",
              "Compares Stripe with our records in the scope given and fixes the drift (unless a dry run). "
              "409 with the run's id when a run of that scope is queued or running; 429 when 20 are queued.",
              body=commands.ReconciliationAsked, answers={202: schemas.RunStarted, **_errors(400, 409)},
              tag="reconciliations"),
    Operation("get", "/reconciliations/{run_id}", "reconciliations.get_reconciliation", "A reconciliation's report",
              "Status, progress and a page of its drift (`limit`, `drift_after`).", query=schemas.DriftPage,
              answers={200: schemas.ReconciliationReport, **_errors(400, 404)}, tag="reconciliations"),
    Operation("post", "/reconciliations/{run_id}/apply", "reconciliations.apply_reconciliation",
              "Fix a dry run's drift", "Fixes exactly the drift a finished dry run reported, re-reading "
              "each object from Stripe first.", answers={202: schemas.RunStarted, **_errors(404, 409)},
              tag="reconciliations"),
    Operation("get", "/openapi.json", "openapi.document", "This document", answers={200: None}, tag="meta"),
)
EVERYWHERE = _errors(401, 429, 503)  # wrong token; too many wrong tokens; PostgreSQL or Redis down
TAGS = [{"name": "customers", "description": "Customer profiles and the actions on them"},
        {"name": "payments", "description": "Refunds, in Stripe"},
        {"name": "subscriptions", "description": "Cancel, pause and resume, in Stripe"},
        {"name": "events", "description": "The event ledger and replays"},
        {"name": "reconciliations", "description": "Drift between Stripe and our records"},
        {"name": "meta", "description": "This description"}]
STATUS_WORDS = {200: "OK", 202: "Accepted: done in our records, and in Stripe where it applies",
                400: "The request broke a rule: the message says which", 401: "Missing or wrong bearer token",
                402: "Stripe refused (its message)", 404: "No such record (or route)",
                405: "Not allowed", 409: "Conflicts with the record's state or an earlier request",
                429: "Too many failed sign-ins from this client, or too many runs queued (see Retry-After)",
                503: "PostgreSQL or Redis is down, or the admin API is disabled: retry later"}


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


# A course id Stripe sent is free text (webhooks/parsing.py CourseIdConverter); every other id is domain/ids.py's.
PATH_PATTERNS = {"{course_id}": CourseIdConverter.regex}


def _parameters(op: Operation, schema_of) -> list[dict]:
    found = [{"name": name.strip("{}"), "in": "path", "required": True,
              "schema": {"type": "string", "pattern": f"^{PATH_PATTERNS.get(name, ID_PATTERN)}$"}}
             for name in op.path.split("/") if name.startswith("{")]
    if op.query is not None:
        for name, prop in schema_of(op.query).get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k not in ("default", "anyOf", "title")}
            found.append({"name": name, "in": "query", "required": False, "schema": prop,
                          "description": prop.pop("description", "")})
    return found


@bp.get("/openapi.json", endpoint="document")
def serve_document():
    return jsonify(document())


@cache
def document() -> dict:
    """The OpenAPI document of the admin API."""
    models = {m for op in OPERATIONS for m in (op.query, op.body, *op.answers.values()) if m is not None}
    models.add(schemas.ErrorAnswer)
    keyed, components = models_json_schema([(m, "validation" if m in _inputs() else "serialization")
                                            for m in sorted(models, key=lambda m: m.__name__)],
                                           ref_template="#/components/schemas/{model}")
    schema_of = {m: components["$defs"][m.__name__] for m in models}.__getitem__
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        answers = {}
        for status, model in sorted({**op.answers, **EVERYWHERE}.items()):
            shown = _ref(model or schemas.ErrorAnswer) if (model or status >= 400) else {"type": "object"}
            answers[str(status)] = {"description": STATUS_WORDS[status],
                                    "content": {"application/json": {"schema": shown}}}
        entry = {"operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
                                .replace("-", "_").replace(".", "_"),
                 "summary": op.summary, "description": op.description, "tags": [op.tag],
                 "parameters": _parameters(op, schema_of), "responses": answers}
        if op.body is not None:
            needed = bool(schema_of(op.body).get("required") or schema_of(op.body).get("minProperties"))
            entry["requestBody"] = {"required": needed, "content": {"application/json": {"schema": _ref(op.body)}}}
        paths.setdefault(PREFIX + op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "teachery-sync admin API", "version": "1",
                 "description": "Teachery's customer records, kept in step with every creator's Stripe account. "
                                "JSON in and out; amounts in the currency's minor unit; times ISO 8601 UTC; "
                                "errors are `{\"error\": …}`. Send `Authorization: Bearer <admin token>`. An "
                                "`Idempotency-Key` header makes an action's retry apply once."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": TAGS,
        "paths": paths,
        "components": {"schemas": components["$defs"],
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _inputs() -> set[type[BaseModel]]:
    return {m for op in OPERATIONS for m in (op.query, op.body) if m is not None}

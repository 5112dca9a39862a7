"""The admin API's OpenAPI document: served behind the token, in step with the routes, and every operation
fuzzed by schemathesis with a valid token (no 5xx; every answer's status and body as documented)."""
from __future__ import annotations

import json
import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from structlog.testing import capture_logs

from domain import profiles
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET
from webhooks import admin_actions
from webhooks.openapi import OPERATIONS, PREFIX

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # per operation; more by hand: FUZZ_EXAMPLES=500
# Operations whose schema-valid requests may still be refused, by a rule a JSON schema cannot say: for them
# schemathesis's "valid data is accepted" check is left out (every other check still runs).
RULES_BEYOND_THE_SCHEMA = {
    "DELETE /admin/api/customers/{customer_id}": "always 405: customers are never deleted",
    "POST /admin/api/subscriptions/{sub_id}/pause": "resumes_at must be in the future",
    "GET /admin/api/reconciliations/{run_id}": "drift_after must be a cursor this API answered",
    "POST /admin/api/payments/{charge_id}/refund": "amount must be at most what is left to refund",
}


def _documented(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.removeprefix(PREFIX))


def test_the_document_needs_the_token_and_is_openapi_3(client):
    assert client.get(PREFIX + "/openapi.json").status_code == 401
    doc = client.get(PREFIX + "/openapi.json", headers=AUTH).json
    assert doc["openapi"].startswith("3.")
    assert all(op.get("summary") for path in doc["paths"].values() for op in path.values())


def test_every_route_is_documented_and_every_operation_is_routed(app):
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            path = _documented(rule.rule)
            if "{verb}" in path:
                verbs = (admin_actions.COURSE_ACCESS if "courses" in path else admin_actions.SUBSCRIPTION_ACTIONS)
                routed |= {(method.lower(), path.replace("{verb}", verb), rule.endpoint) for verb in verbs}
            else:
                routed.add((method.lower(), path, rule.endpoint))
    documented = {(op.method, op.path, op.endpoint) for op in OPERATIONS}
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented operations no route serves"


@pytest.fixture
def known_ids(services, stripe_api, send, client):
    """A customer with a one-off purchase and a subscription, their events, and a queued run: the ids the
    fuzzer's path parameters take half the time, so that actions meet real records, not only 404s."""
    cus = stripe_api.create_customer(None, "Ada Lovelace", "ada@example.com")["id"]
    charge = stripe_api.buy_course(None, cus, 4900, "course_a")
    sub, _ = stripe_api.subscribe(None, cus, 1900, "course_b")
    events = stripe_api.take_events()
    send(*events)
    with services.pool.connection() as conn:
        customer = profiles.profile_by_stripe_id(conn, "", cus)
    run = client.post(PREFIX + "/reconciliations", json={"dry_run": True}, headers=AUTH).json["id"]
    return {"customer_id": customer["id"], "course_id": "course_a", "cus_id": cus, "charge_id": charge["id"],
            "sub_id": sub["id"], "event_id": events[-1]["id"], "run_id": run}


def test_every_operation_answers_as_documented(app, services, known_ids):
    """schemathesis's cases for each operation in turn (its pytest plugin does not run under pytest 9, so
    the cases are drawn with hypothesis directly): no 5xx, and every answer as the document says. Its
    checks include a call without the token (401 expected), many times over: the failed-auth limit is
    lifted for the test."""
    services.settings = services.settings.with_(auth_failure_limit="1000000/minute")
    schema = schemathesis.openapi.from_wsgi(PREFIX + "/openapi.json", app, headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    served = {f"{op.method.upper()} {PREFIX}{op.path}" for op in OPERATIONS} - {PREFIX and "GET /admin/api/openapi.json"}
    assert {o.label for o in operations} == served  # schemathesis leaves out the document's own path
    with capture_logs() as logs:
        for operation in operations:
            fuzz(operation, known_ids)
    secrets = (ADMIN_TOKEN, WEBHOOK_SECRET, services.settings.stripe_api_key)
    assert not [line for line in logs if any(s in json.dumps(line, default=str) for s in secrets)]


def fuzz(operation, known_ids: dict) -> None:
    """EXAMPLES of schemathesis's cases for one operation, half of them on the records that exist."""
    beyond = [positive_data_acceptance] if operation.label in RULES_BEYOND_THE_SCHEMA else None

    @given(case=operation.as_strategy(), real=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_documented(case, real):
        if real and case.path_parameters:
            case.path_parameters.update({k: known_ids[k] for k in case.path_parameters if k in known_ids})
        response = case.call_and_validate(headers=AUTH, excluded_checks=beyond)
        assert ADMIN_TOKEN not in response.text and WEBHOOK_SECRET not in response.text

    answers_as_documented()

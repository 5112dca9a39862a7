"""The receiver under hypothesis: whatever arrives — body, headers, signature, timestamp, content type,
encoding, size, method — the answer is 200, 400, 405 or 413, never a 5xx, and nothing is stored unless the
signature is valid (and then only a well-formed event, once)."""
from __future__ import annotations

import json
import os
import time

import psycopg
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.support import WEBHOOK_SECRET, sign

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
PATH = "/webhooks/stripe"
ALLOWED = {200, 400, 405, 413}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
event_ids = st.one_of(st.from_regex(r"\Aevt_[A-Za-z0-9]{1,24}\Z"), st.text(max_size=30), st.integers(), st.none())
events = st.fixed_dictionaries(
    {"id": event_ids, "object": st.sampled_from(["event", "charge", "", None]),
     "type": st.one_of(st.sampled_from(["charge.succeeded", "customer.updated", "x" * 300]), st.text(max_size=40)),
     "created": st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.text(max_size=5)),
     "data": st.one_of(st.fixed_dictionaries({"object": json_values}), json_values)},
    optional={"account": st.one_of(st.from_regex(r"\Aacct_[A-Za-z0-9]{1,10}\Z"), st.text(max_size=12)),
              "api_version": st.text(max_size=12), "extra": json_values})


stripe_events = st.fixed_dictionaries(
    {"id": st.from_regex(r"\Aevt_[A-Za-z0-9]{1,24}\Z"), "object": st.just("event"),
     "type": st.sampled_from(["charge.succeeded", "customer.updated", "invoice.paid", "some.new_type"]),
     "created": st.integers(min_value=0, max_value=2**40), "livemode": st.booleans(),
     "data": st.fixed_dictionaries({"object": st.fixed_dictionaries({"id": st.from_regex(r"\Ach_[a-z0-9]{1,8}\Z"),
                                                                     "object": st.just("charge")})})},
    optional={"account": st.from_regex(r"\Aacct_[A-Za-z0-9]{1,10}\Z"), "api_version": st.just("2024-06-20")})


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["stripe", "stripe", "event", "json", "bytes", "text", "big"]))
    if kind == "stripe":
        return json.dumps(draw(stripe_events), indent=draw(st.sampled_from([None, 2]))).encode()
    if kind == "event":
        text = json.dumps(draw(events), ensure_ascii=draw(st.booleans()))
        return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), errors="replace")
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", errors="surrogatepass")
    if kind == "big":
        return b"{" + b" " * draw(st.integers(min_value=1024 * 1024 - 10, max_value=1024 * 1024 + 10)) + b"}"
    return draw(st.binary(max_size=300))


@st.composite
def signatures(draw, body: bytes) -> tuple[str | None, bool]:
    """(Stripe-Signature header or None, whether it is valid for body)."""
    now = int(time.time())
    kind = draw(st.sampled_from(["valid", "valid", "none", "garbage", "wrong secret", "old", "future", "v0 only",
                                 "tampered"]))
    if kind == "valid":
        return sign(body, WEBHOOK_SECRET, now), True
    if kind == "none":
        return None, False
    if kind == "garbage":
        return draw(st.text(max_size=120).filter(lambda s: "\n" not in s and "\r" not in s)), False
    if kind == "wrong secret":
        return sign(body, "whsec_not_ours", now), False
    if kind == "old":
        return sign(body, WEBHOOK_SECRET, now - draw(st.integers(min_value=301, max_value=10**9))), False
    if kind == "future":  # signed with our secret: authentic, as Stripe's own check holds (it bounds only the age)
        return sign(body, WEBHOOK_SECRET, now + draw(st.integers(min_value=301, max_value=10**9))), True
    if kind == "v0 only":
        return sign(body, WEBHOOK_SECRET, now).replace("v1=", "v0="), False
    return sign(body + b" ", WEBHOOK_SECRET, now), False


def _stored(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_whatever_arrives_the_answer_is_never_a_5xx_and_only_signed_events_are_stored(client, settings):
    settings_db = settings.database_url
    seen = {"stored": 0, "refused": 0}

    @given(data=st.data())
    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def receive(data):
        body = data.draw(bodies(), label="body")
        header, valid = data.draw(signatures(body), label="signature")
        headers = {"Content-Type": data.draw(st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded",
             "multipart/form-data; boundary=x", ""]), label="content type")}
        if header is not None:
            headers["Stripe-Signature"] = header
        method = data.draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "PATCH", "DELETE"]), label="method")
        chunked = data.draw(st.booleans(), label="query string")
        before = _stored(settings_db)
        answer = client.open(PATH + ("?x=1" if chunked else ""), method=method, data=body, headers=headers)
        assert answer.status_code in ALLOWED, (answer.status_code, answer.get_data()[:200])
        assert answer.is_json and ("received" in answer.json or "error" in answer.json)
        assert WEBHOOK_SECRET not in answer.get_data(as_text=True)
        added = _stored(settings_db) - before
        if not (valid and method == "POST" and answer.status_code == 200):
            assert added == 0, "stored without a valid signature"
        else:
            assert added == (0 if answer.json.get("duplicate") else 1)
        seen["stored" if added else "refused"] += 1

    with capture_logs() as logs:
        receive()
    assert seen["stored"] and seen["refused"], seen  # both paths were exercised
    assert not [line for line in logs if WEBHOOK_SECRET in json.dumps(line, default=str)]

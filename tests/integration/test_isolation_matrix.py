"""The isolation matrix of scoped admin tokens (issue 12, part 3): two connected accounts and the platform hold
customers of the SAME email, name and course ids; four tokens (unscoped, account A, account B, the platform)
call EVERY admin API route (enumerated from webhooks/openapi.py OPERATIONS) and every console page and form
(enumerated from the app's URL map), each on its own account's records and on the others'.

- own records: 200/202 (the console: its page, or its redirect after the action); lists hold its own only;
- another account's records: 404, exactly as a record that does not exist, and NOTHING changes: not a row
  of the database, not a queued job, not one request to Stripe;
- no body a token gets names another account's records: its ids (acct_, cus_, ch_, sub_, evt_, our
  customer ids, reconciliation run ids) are grepped for (names and emails are shared, so ids it is). The ids
  the request itself named are the caller's own words and are left out of that grep (a 404 may repeat them);
- the admin actions a token makes, and their activity entries, carry the token's name (the actor).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace

import psycopg
import pytest
from rq import Queue

from tests.integration.test_console_session import csrf_of
from tests.stripe_events import DAY, T0, charge, customer, event, subscription
from tests.support import ADMIN_TOKEN
from webhooks.openapi import OPERATIONS, PREFIX
from workers.queueing import QUEUES

ACCT_A, ACCT_B, PLATFORM = "acct_1IsoAlpha", "acct_1IsoBravo", ""
ACCOUNTS = (ACCT_A, ACCT_B, PLATFORM)
NAME, EMAIL = "Ada Lovelace", "ada@example.com"  # the same in every account
COURSE, CLUB = "course_basics", "course_club"  # the same course ids in every account
TOKENS = {  # name: (token, scope) — scope None: every account; '' the platform
    "admin": (ADMIN_TOKEN, None),
    "alice": ("iso-token-alice-7f3c", ACCT_A),
    "bob": ("iso-token-bob-91d2", ACCT_B),
    "plat": ("iso-token-platform-5e8a", PLATFORM),
}
SCOPED = [name for name, (_, scope) in TOKENS.items() if scope is not None]


@dataclass
class Records:
    """One account's records, and every id that names them."""
    account: str
    cus: str
    ch: str
    sub: str
    customer: str = ""  # our customer id
    event: str = ""  # a failed event of this account
    events: list[str] = field(default_factory=list)
    run: str = ""  # a finished dry run of this account, with drift

    @property
    def ids(self) -> set[str]:
        found = {self.cus, self.ch, self.sub, self.customer, self.run, *self.events}
        return found | ({self.account} if self.account else set())


@pytest.fixture
def settings(settings):
    return replace(settings, admin_tokens=tuple((name, token, scope) for name, (token, scope) in TOKENS.items()))


def _tag(account: str) -> str:
    return {ACCT_A: "A", ACCT_B: "B", PLATFORM: "P"}[account]


def bearer(name: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


@pytest.fixture
def world(client, stripe_api, send, run_worker, services) -> dict[str, Records]:
    """Each account: Ada bought COURSE and subscribes to CLUB (signed webhooks + the worker), one of her
    events failed, and Stripe's copy of her name differs from ours: a finished dry run of the account found it."""
    found = {}
    for account in ACCOUNTS:
        tag = _tag(account)
        rec = Records(account, f"cus_Iso{tag}", f"ch_Iso{tag}", f"sub_Iso{tag}")
        cus = customer(rec.cus, email=EMAIL, name=NAME)
        ch = charge(rec.ch, customer=rec.cus, amount=4900, created=T0, metadata={"course_id": COURSE})
        sub = subscription(rec.sub, customer=rec.cus, created=T0, status="active", metadata={"course_id": CLUB},
                           current_period_start=T0, current_period_end=T0 + 30 * DAY)
        stripe_api.put(cus, ch, sub, account=account or None)
        events = [event("customer.created", cus, created=T0, account=account or None),
                  event("charge.succeeded", ch, created=T0, account=account or None),
                  event("customer.subscription.created", sub, created=T0, account=account or None)]
        send(*events)
        rec.events = [e["id"] for e in events]
        rec.event = events[0]["id"]
        stripe_api.put({**cus, "name": "Ada Renamed"}, account=account or None)  # drift for the dry runs
        found[account] = rec
    with psycopg.connect(services.settings.database_url, autocommit=True) as conn:
        for rec in found.values():
            rec.customer = conn.execute("SELECT id::text FROM customers WHERE account = %s AND stripe_customer_id = %s",
                                        (rec.account, rec.cus)).fetchone()[0]
            conn.execute("UPDATE events SET status = 'failed', last_error = 'test: failed' WHERE id = %s", (rec.event,))
    for account, name in ((ACCT_A, "alice"), (ACCT_B, "bob"), (PLATFORM, "plat")):
        r = client.post(f"{PREFIX}/reconciliations", json={"dry_run": True}, headers=bearer(name))
        assert r.status_code == 202, r.get_json()
        found[account].run = r.get_json()["id"]
    run_worker()
    for rec in found.values():
        report = client.get(f"{PREFIX}/reconciliations/{rec.run}", headers=bearer("admin")).get_json()
        assert report["status"] == "succeeded" and report["scope"]["account"] == (rec.account or "platform"), report
        assert report["drift"], report  # the renamed customer
    stripe_api.requests.clear()
    return found


# --- what nothing may change: the whole database, the queues, Stripe --------------------------------

def snapshot(services) -> dict:
    with psycopg.connect(services.settings.database_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
        rows = {t: sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{t}"')) for t in tables}
    jobs = {name: sorted(Queue(name, connection=services.redis).job_ids) for name in QUEUES}
    return {"rows": rows, "jobs": jobs}


def leaked(body: str, asked: str, mine: Records | None, world: dict[str, Records]) -> set[str]:
    """The ids of other accounts' records in a body (those the request named itself left out)."""
    if mine is None:
        return set()
    others = set().union(*(rec.ids for rec in world.values() if rec is not mine)) - mine.ids
    return {i for i in others if i and i in body and i not in asked}


# --- the admin API ----------------------------------------------------------------------------------

BODIES = {
    ("patch", "/customers/{customer_id}"): {"name": "Ada Edited"},
    ("post", "/payments/{charge_id}/refund"): {"amount": 100},
    ("post", "/subscriptions/{sub_id}/cancel"): {"at_period_end": True},
    ("post", "/subscriptions/{sub_id}/pause"): {"behavior": "void"},
    ("post", "/subscriptions/{sub_id}/resume"): {},
}
LISTS = {("get", "/customers"), ("get", "/events")}
ALWAYS = {("delete", "/customers/{customer_id}"): 405, ("get", "/openapi.json"): 200}  # whoever asks, whatever


def api_request(op, rec: Records) -> tuple[str, dict | None]:
    """The request of this operation about these records: (path with query, JSON body)."""
    values = {"customer_id": rec.customer, "cus_id": rec.cus, "course_id": COURSE, "charge_id": rec.ch,
              "sub_id": rec.sub, "event_id": rec.event, "run_id": rec.run}
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], op.path)
    key = (op.method, op.path)
    body = BODIES.get(key)
    if key == ("get", "/customers"):
        path += f"?q={EMAIL}"
    elif key == ("get", "/events"):
        path += f"?account={rec.account or 'platform'}"
    elif key == ("get", "/stripe-customers/{cus_id}"):
        path += f"?account={rec.account}" if rec.account else ""
    elif key == ("post", "/reconciliations"):
        body = {"dry_run": True} | ({"account": rec.account} if rec.account else {})
    return path, body


def call(client, token: str, op, rec: Records):
    path, body = api_request(op, rec)
    response = client.open(PREFIX + path, method=op.method.upper(), json=body,
                           headers={**bearer(token), "Idempotency-Key": str(uuid.uuid4())})
    return path + repr(body), response


def test_every_admin_route_is_in_the_matrix():
    """A new route gets a row here or fails this test: every operation is a list, a record route (own / other)
    or answers the same to everyone."""
    for op in OPERATIONS:
        key = (op.method, op.path)
        assert key in LISTS or key in ALWAYS or "{" in op.path or key == ("post", "/reconciliations"), key
        if op.method in ("post", "patch", "put") and key in BODIES:
            assert op.body is not None, key


@pytest.mark.parametrize("token", SCOPED)
def test_a_scoped_token_gets_404_for_every_record_of_another_account_and_nothing_changes(
        token, client, world, services, stripe_api):
    mine = world[TOKENS[token][1]]
    for other in (rec for rec in world.values() if rec is not mine):
        before = snapshot(services)
        for op in OPERATIONS:
            key = (op.method, op.path)
            asked, r = call(client, token, op, other)
            body = r.get_data(as_text=True)
            if key in ALWAYS:
                assert r.status_code == ALWAYS[key], (key, r.status_code)
            elif key in LISTS:  # a filter naming another account: an empty list
                assert r.status_code == 200, (key, body)
                items = r.get_json()["customers" if op.path == "/customers" else "events"]
                if op.path == "/customers":  # the search has no account filter: its own Ada only
                    assert [c["id"] for c in items] == [mine.customer], key
                else:
                    assert items == [], key
            elif key == ("post", "/reconciliations") and not other.account:
                assert r.status_code == 202  # naming no account: a scoped token's own account (checked below)
                run = r.get_json()["id"]
                assert client.get(f"{PREFIX}/reconciliations/{run}", headers=bearer(token)).get_json()["scope"]["account"] \
                    == (mine.account or "platform")
                with psycopg.connect(services.settings.database_url, autocommit=True) as conn:
                    conn.execute("DELETE FROM reconciliation_runs WHERE id = %s", (run,))
                Queue(QUEUES[1], connection=services.redis).empty()
            else:
                assert r.status_code == 404, (token, key, r.status_code, body)
            assert not leaked(body, asked, mine, world), (token, key, leaked(body, asked, mine, world))
        assert snapshot(services) == before, (token, "changed something of", other.account)
        assert stripe_api.requests == [], (token, [(c["method"], c["path"]) for c in stripe_api.requests])


@pytest.mark.parametrize("token", [*SCOPED, "admin"])
def test_a_token_reads_and_acts_on_its_own_records_and_its_name_is_the_actor(
        token, client, world, services, stripe_api):
    scope = TOKENS[token][1]
    targets = list(world.values()) if scope is None else [world[scope]]
    mine = None if scope is None else world[scope]
    others = [rec for rec in world.values() if rec not in targets]
    others_before = _rows_of(services, [rec.account for rec in others])
    for rec in targets:
        for op in OPERATIONS:
            key = (op.method, op.path)
            if scope is None and key == ("post", "/reconciliations") and not rec.account:
                continue  # no account: every account's run, not the platform's (scoped tokens cover it)
            asked, r = call(client, token, op, rec)
            body = r.get_data(as_text=True)
            expected = ALWAYS.get(key) or (202 if 202 in op.answers else 200)
            assert r.status_code == expected, (token, key, r.status_code, body)
            assert not leaked(body, asked, mine, world), (token, key, leaked(body, asked, mine, world))
            if key == ("get", "/customers"):
                found = {c["id"] for c in r.get_json()["customers"]}
                assert found == ({rec.customer} if scope is not None else {w.customer for w in world.values()})
            if key == ("get", "/events"):
                assert {e["id"] for e in r.get_json()["events"]} == set(rec.events)
    if scope is not None:  # the whole ledger, unfiltered: its own account's events only
        listed = client.get(f"{PREFIX}/events", headers=bearer(token)).get_json()["events"]
        assert {e["id"] for e in listed} == set(mine.events)
    assert _rows_of(services, [rec.account for rec in others]) == others_before  # nothing of theirs changed
    touched = {c["account"] or "" for c in stripe_api.requests}
    assert touched <= {rec.account for rec in targets}, touched
    assert stripe_api.writes(), "the actions reached Stripe"
    with psycopg.connect(services.settings.database_url) as conn:
        actions = conn.execute("SELECT account, kind, actor FROM admin_actions").fetchall()
        activity = conn.execute("SELECT account, actor FROM activity WHERE origin = 'teachery'").fetchall()
    assert actions and {actor for _, _, actor in actions} == {token}, actions
    assert {account for account, _, _ in actions} == {rec.account for rec in targets}
    assert activity and {actor for _, actor in activity} == {token}, activity


def _rows_of(services, accounts: list[str]) -> dict:
    """Every row of these accounts in the tables that have an account column (a run's: acct_… or platform)."""
    accounts = [*accounts, *(["platform"] if PLATFORM in accounts else [])]
    with psycopg.connect(services.settings.database_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = "
            "'account' ORDER BY 1")]
        return {t: sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{t}" WHERE account = ANY(%s)', (accounts,)))
                for t in tables}


# --- the console ------------------------------------------------------------------------------------

CONSOLE_BLUEPRINTS = ("console_customers", "console_events", "console_reconciliations", "console_health")
VERBS = {"/admin/customers/<id:customer_id>/courses/<course:course_id>/<verb>": ("revoke", "grant"),
         "/admin/customers/<id:customer_id>/subscriptions/<id:sub_id>/<verb>": ("cancel", "pause", "resume")}
FORMS = {  # what each form sends besides its CSRF token and idempotency key
    "edit": {"name": "Ada Edited", "was_name": NAME, "email": EMAIL, "was_email": EMAIL},
    "refund": {"amount": "1.00"}, "cancel": {"when": "period_end"}, "pause": {"behavior": "void"},
}
LIST_PAGES = ("/admin/customers", "/admin/events", "/admin/events/replay-failed", "/admin/reconciliations",
              "/admin/health")  # pages of no one record: what they show is checked by the tests below


def console_rules(app) -> set[tuple[str, str]]:
    """(method, rule) of every console page and form of the four record blueprints."""
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith(CONSOLE_BLUEPRINTS)
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def console_requests(rule: str, rec: Records) -> list[tuple[str, dict]]:
    """The requests of a record's page or form: [(path, form fields)]."""
    values = {"customer_id": rec.customer, "course_id": COURSE, "charge_id": rec.ch, "sub_id": rec.sub,
              "event_id": rec.event, "run_id": rec.run}
    found = []
    for verb in VERBS.get(rule, (None,)):
        named = values | {"verb": verb}
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m, named=named: named[m.group(1)], rule)
        name = verb or path.rsplit("/", 1)[-1]
        found.append((path, {"idempotency_key": str(uuid.uuid4()), **FORMS.get(name, {})}))
    return found


def signed_in(client, token: str):
    form = client.get("/admin/sign-in")
    r = client.post("/admin/sign-in", data={"token": TOKENS[token][0], "csrf_token": csrf_of(form.data)})
    assert r.status_code == 302
    return csrf_of(client.get("/admin/customers").data)


def test_every_console_route_is_in_the_matrix(app):
    record_routes = {rule for _, rule in console_rules(app) if "<" in rule}
    assert {rule for _, rule in console_rules(app)} - record_routes == {
        *LIST_PAGES, "/admin/customers", "/admin/events/replay-failed", "/admin/reconciliations"}
    assert record_routes == {  # a new one: give it its requests in console_requests (and here)
        "/admin/customers/<id:customer_id>", "/admin/customers/<id:customer_id>/links",
        "/admin/customers/<id:customer_id>/edit", "/admin/customers/<id:customer_id>/welcome-email",
        "/admin/customers/<id:customer_id>/courses/<course:course_id>/<verb>",
        "/admin/customers/<id:customer_id>/payments/<id:charge_id>/refund",
        "/admin/customers/<id:customer_id>/subscriptions/<id:sub_id>/<verb>",
        "/admin/events/<id:event_id>", "/admin/events/<id:event_id>/replay", "/admin/reconciliations/<id:run_id>",
        "/admin/reconciliations/<id:run_id>/progress", "/admin/reconciliations/<id:run_id>/apply"}


@pytest.mark.parametrize("token", SCOPED)
def test_the_console_answers_404_for_every_record_of_another_account_and_changes_nothing(
        token, app, client, world, services, stripe_api):
    csrf = signed_in(client, token)
    mine = world[TOKENS[token][1]]
    for other in (rec for rec in world.values() if rec is not mine):
        before = snapshot(services)
        for method, rule in sorted(console_rules(app)):
            if "<" not in rule:
                continue
            for path, form in console_requests(rule, other):
                r = client.get(path) if method == "GET" else client.post(path, data={**form, "csrf_token": csrf})
                body = r.get_data(as_text=True)
                assert r.status_code == 404, (token, method, path, r.status_code, body[:300])
                assert not leaked(body, path, mine, world), (token, path, leaked(body, path, mine, world))
        # the lists: another account named in a filter shows nothing; the rest only its own
        for path in (f"/admin/events?account={other.account or 'platform'}", "/admin/customers?q=ada",
                     "/admin/events", "/admin/reconciliations", "/admin/health", "/admin/events/replay-failed"):
            r = client.get(path)
            assert r.status_code == 200, path
            assert not leaked(r.get_data(as_text=True), path, mine, world), (token, path)
        events = client.get(f"/admin/events?account={other.account or 'platform'}").get_data(as_text=True)
        assert not any(e in events for e in mine.events)  # nothing listed at all, not even its own
        starts = client.post("/admin/reconciliations", data={"csrf_token": csrf, "mode": "dry_run",
                                                              "account": other.account or "platform"})
        assert starts.status_code == 404, (token, "start a run of", other.account)
        assert snapshot(services) == before, (token, "changed something of", other.account)
        assert stripe_api.requests == []
    rq = client.get("/admin/rq/")
    assert rq.status_code == 404 and "Jobs</a>" not in client.get("/admin/customers").get_data(as_text=True)


@pytest.mark.parametrize("token", [*SCOPED, "admin"])
def test_the_console_shows_and_acts_on_a_tokens_own_records_as_that_token(
        token, app, client, world, services, stripe_api):
    csrf = signed_in(client, token)
    scope = TOKENS[token][1]
    mine = None if scope is None else world[scope]
    targets = list(world.values()) if scope is None else [mine]
    others = [rec for rec in world.values() if rec not in targets]
    others_before = _rows_of(services, [rec.account for rec in others])

    search = client.get("/admin/customers?q=ada").get_data(as_text=True)
    assert set(re.findall(r'href="/admin/customers/([0-9a-f-]{36})"', search)) == {rec.customer for rec in targets}
    ledger = client.get("/admin/events").get_data(as_text=True)
    assert set(re.findall(r"evt_Iso\w+|evt_T\w+", ledger)) == {e for rec in targets for e in rec.events}
    runs = client.get("/admin/reconciliations").get_data(as_text=True)
    assert {rec.run for rec in world.values() if rec.run in runs} == {rec.run for rec in targets}
    failed = client.get("/admin/events/replay-failed")
    count = int(re.search(r'name="expected" value="(\d+)"', failed.get_data(as_text=True)).group(1))
    assert count == len(targets)  # one failed event per account it sees
    header = client.get("/admin/health").get_data(as_text=True)
    assert f"{len(targets)} failed</a>" in header  # the header's count: its own account's failed events
    assert not leaked(header, "", mine, world)
    assert (client.get("/admin/rq/").status_code == 200) == (scope is None)

    for rec in targets:
        for method, rule in sorted(console_rules(app), key=_order):
            if "<" not in rule:
                continue
            for path, form in console_requests(rule, rec):
                r = client.get(path) if method == "GET" else client.post(path, data={**form, "csrf_token": csrf})
                body = r.get_data(as_text=True)
                assert r.status_code in ((200,) if method == "GET" else (302, 303)), (token, path, r.status_code,
                                                                                       body[:400])
                assert not leaked(body, path, mine, world), (token, path)
                if r.status_code == 303:  # a profile action: done, said on the profile
                    page = client.get(r.headers["Location"]).get_data(as_text=True)
                    assert "Nothing was done" not in page, (token, path, re.findall(r"Nothing was done[^<]*", page))
    if scope is not None:
        r = client.post("/admin/reconciliations", data={"csrf_token": csrf, "mode": "dry_run"})
        assert r.status_code == 302
        run_id = r.headers["Location"].rsplit("/", 1)[-1]
        run = client.get(f"/admin/reconciliations/{run_id}")
        assert run.status_code == 200 and not leaked(run.get_data(as_text=True), "", mine, world)
        with psycopg.connect(services.settings.database_url) as conn:
            account = conn.execute("SELECT account FROM reconciliation_runs WHERE id = %s", (run_id,)).fetchone()[0]
        assert account == (scope or "platform")  # the form's account is the token's, whatever it sent
    replayed = client.post("/admin/events/replay-failed", data={"csrf_token": csrf, "expected": str(count)})
    assert replayed.status_code == 302
    queued = " ".join(Queue(QUEUES[0], connection=services.redis).job_ids)
    assert all(rec.event in queued for rec in targets) and not any(rec.event in queued for rec in others)

    assert _rows_of(services, [rec.account for rec in others]) == others_before
    assert {c["account"] or "" for c in stripe_api.requests} <= {rec.account for rec in targets}
    with psycopg.connect(services.settings.database_url) as conn:
        actions = conn.execute("SELECT account, actor FROM admin_actions").fetchall()
        activity = conn.execute("SELECT account, actor FROM activity WHERE origin = 'teachery'").fetchall()
    assert len(actions) >= 8 * len(targets) and {actor for _, actor in actions} == {token}, actions
    assert {account for account, _ in actions} == {rec.account for rec in targets}
    assert activity and {actor for _, actor in activity} == {token}


def _order(route: tuple[str, str]) -> tuple:
    """Pages first, then the forms; a run's fixing last (its page first)."""
    method, rule = route
    return (method != "GET", rule.endswith("/apply"), rule)

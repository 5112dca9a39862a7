"""Webhooks in flight share one INSERT and one commit; each still gets exactly its own answer."""
import json
import threading
import time
from contextlib import contextmanager

import psycopg
import structlog
from structlog.testing import capture_logs

from domain import ledger
from tests.integration.test_drain import STORY
from tests.support import sign
from webhooks import receiver as receiver_module
from webhooks.receiver import EXTENSION


def _event(n: int, **extra) -> dict:
    return {**STORY[0], "id": f"evt_group_{n:03d}", **extra}


def test_a_group_stores_each_event_once_answers_each_its_own_and_refuses_only_the_bad_body(app, services,
                                                                                          monkeypatch):
    receiver = app.extensions[EXTENSION]
    real_write, writes, first_held = ledger.record_events, [], threading.Event()

    def held_write(conn, items, **kw):
        writes.append([event["id"] for event, _ in items])
        if len(writes) == 1:
            first_held.wait(5)  # the others arrive meanwhile and queue for the next write
        return real_write(conn, items, **kw)

    monkeypatch.setattr(ledger, "record_events", held_write)
    bodies = [json.dumps(_event(n)).encode() for n in range(12)]
    bodies += [bodies[3], bodies[3], bodies[7]]  # the same event twice in one group, and redelivered
    bad = json.dumps(_event(99, data={"object": {**STORY[0]["data"]["object"], "name": "E\\u0000ve"}}))
    bodies.append(bad.encode().replace(b"E\\\\u0000ve", b"E\\u0000ve"))
    answers = {}

    def post(i, body):
        answers[i] = receiver.receive(body, sign(body))

    first = threading.Thread(target=post, args=(-1, json.dumps(_event(500)).encode()))
    first.start()
    while not writes:
        time.sleep(0.001)
    threads = [threading.Thread(target=post, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(receiver._group._waiting) < len(bodies) and time.monotonic() < deadline:
        time.sleep(0.001)  # every other webhook is waiting for the held write
    first_held.set()
    for thread in [first, *threads]:
        thread.join(10)

    assert answers[-1] == (200, {"received": True})
    assert [answers[i] for i in range(12) if i not in (3, 7)] == [(200, {"received": True})] * 10
    news = [answers[i] for i in (3, 12, 13)]  # event 3 three times: new once, duplicate twice
    assert sorted(news, key=str) == sorted([(200, {"received": True})] + [(200, {"received": True, "duplicate": True})] * 2, key=str)
    assert sorted([answers[7], answers[14]], key=str) == sorted([(200, {"received": True}), (200, {"received": True, "duplicate": True})], key=str)
    status, answer = answers[15]
    assert status == 400 and answer["error"].startswith("the event cannot be stored as given"), answer
    # One write for everything that waited; the bad body failed it, so each went again on its own.
    assert len(writes[1]) == len(bodies) and sorted(map(tuple, writes[2:])) == sorted((i,) for i in writes[1])
    with psycopg.connect(services.settings.database_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM events")}
    assert stored == {f"evt_group_{n:03d}" for n in [*range(12), 500]}


@contextmanager
def captured(monkeypatch):
    """structlog's capture_logs, with the receiver's logger made anew inside it: the module's own may have
    been cached with the real configuration by an earlier test (cache_logger_on_first_use)."""
    with capture_logs() as logs:
        monkeypatch.setattr(receiver_module, "log", structlog.get_logger(receiver_module.__name__))
        yield logs


def test_a_group_writes_one_line_naming_each_event_with_its_own_request_id(client, monkeypatch):
    first, again = _event(1), _event(2)
    with captured(monkeypatch) as logs:
        for event, request_id in ((first, "req-first"), (again, "req-again"), (first, "req-redelivered")):
            body = json.dumps(event).encode()
            answer = client.post("/webhooks/stripe", data=body,
                                 headers={"Stripe-Signature": sign(body), "X-Request-Id": request_id})
            assert answer.status_code == 200 and answer.headers["X-Request-Id"] == request_id
    lines = [line for line in logs if line["event"] == "events received"]
    assert [line["events"] for line in lines] == [
        [{"event_id": "evt_group_001", "type": first["type"], "request_id": "req-first", "duplicate": False}],
        [{"event_id": "evt_group_002", "type": again["type"], "request_id": "req-again", "duplicate": False}],
        [{"event_id": "evt_group_001", "type": first["type"], "request_id": "req-redelivered", "duplicate": True}]]
    assert all("request_id" not in line for line in lines)  # the group's line is no single request's


def test_a_group_line_names_every_event_of_the_group_once(app, services, monkeypatch):
    receiver = app.extensions[EXTENSION]
    real_write, held = ledger.record_events, threading.Event()

    def held_write(conn, items, **kw):
        held.wait(5)
        return real_write(conn, items, **kw)

    monkeypatch.setattr(ledger, "record_events", held_write)
    bodies = [json.dumps(_event(n)).encode() for n in range(6)]
    with captured(monkeypatch) as logs:
        threads = [threading.Thread(target=receiver.receive, args=(body, sign(body), f"req-{n}"))
                   for n, body in enumerate(bodies)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while len(receiver._group._waiting) < len(bodies) - 1 and time.monotonic() < deadline:
            time.sleep(0.001)  # one writes (held), the five others wait for the next write
        held.set()
        for thread in threads:
            thread.join(10)
    lines = [line for line in logs if line["event"] == "events received"]
    assert len(lines) == 2, lines
    named = sorted((event["event_id"], event["request_id"]) for line in lines for event in line["events"])
    assert named == [(f"evt_group_{n:03d}", f"req-{n}") for n in range(6)]

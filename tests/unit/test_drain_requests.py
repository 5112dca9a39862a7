"""A web process asks for a drain at most once per DRAIN_REQUEST_INTERVAL."""
import contextlib

from workers import queueing
from workers.queueing import DRAIN_REQUEST_INTERVAL, DrainRequests


def test_a_drain_asked_for_a_moment_ago_is_not_asked_for_again(monkeypatch):
    asked = []
    monkeypatch.setattr(queueing, "request_drain", lambda queue: asked.append(queue))
    now = [100.0]
    requests = DrainRequests("the queue", clock=lambda: now[0])
    requests.request()
    now[0] += DRAIN_REQUEST_INTERVAL / 2
    requests.request()
    assert asked == ["the queue"]
    now[0] += DRAIN_REQUEST_INTERVAL
    requests.request()
    assert asked == ["the queue"] * 2


def test_a_failed_request_is_tried_again_by_the_next_webhook(monkeypatch):
    calls = []

    def down(queue):
        calls.append(queue)
        raise ConnectionError("redis down")

    monkeypatch.setattr(queueing, "request_drain", down)
    requests = DrainRequests("q", clock=lambda: 5.0)
    for _ in range(2):
        with contextlib.suppress(ConnectionError):
            requests.request()
    assert len(calls) == 2

"""rq-dashboard gets our Redis URL with short timeouts, whatever its form."""
from __future__ import annotations

import pytest
from redis_sentinel_url import connect

from webhooks.console.jobs import with_timeouts


@pytest.mark.parametrize("url, db, timeout", [
    ("redis://127.0.0.1:6379/0", 0, 3.0),
    ("unix:///tmp/redis.sock?db=3", 3, 3.0),
    ("redis://:secret@host:1/2", 2, 3.0),
    ("rediss://host:1/2?socket_timeout=9", 2, 9.0),  # a timeout given is kept
])
def test_the_dashboards_client_has_short_timeouts(url, db, timeout):
    client = connect(with_timeouts(url))[1]
    options = client.connection_pool.connection_kwargs
    assert (options["db"], options["socket_timeout"], options["socket_connect_timeout"]) == (db, timeout, 2.0)

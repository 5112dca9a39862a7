"""A drain's pipeline never loses a prepared statement (found by the chaos soak, tests/chaos).

Why: psycopg 3.3 can lose a prepared statement in pipeline mode. The answer to a ROLLBACK (TO SAVEPOINT:
how a batch undoes an event it did not apply) empties psycopg's cache of prepared statements and leaves a
DEALLOCATE ALL to send after the next statement. When that answer is read in the middle of an
`executemany` (which always prepares: the batch's attempts, its activity), the next rows prepare the
statement again under a new name, which the DEALLOCATE ALL sent after them drops on the server while
psycopg keeps it: every later use of it on that connection failed with `prepared statement "_pg3_N" does
not exist`, and with it every event the worker applied, until they gave up (the soak's workers, under
deadlocks between two batches, stopped applying anything). So a batch writes its attempts and activity
with one set-based statement each (`unnest`), never `executemany`: a plain statement is prepared only
after several uses, counted afresh once the cache is emptied, so the DEALLOCATE ALL goes before it is
prepared again. `test_the_hazard` shows psycopg's side."""
import psycopg

from workers import draining, event_table

T0 = 1_764_000_000


def _customer(n: int) -> dict:
    return {"id": f"evt_prep_{n}", "object": "event", "type": "customer.created", "created": T0, "livemode": False,
            "data": {"object": {"id": f"cus_PREP{n}", "object": "customer", "email": f"p{n}@example.com",
                                "name": f"P {n}", "created": T0, "metadata": {}}}}


def _fault(n: int) -> dict:
    return {"id": f"evt_prep_fault_{n}", "object": "event", "type": "customer.discount.created",
            "created": T0 + 60, "livemode": False,
            "data": {"object": {"id": f"di_{n}", "object": "discount", "customer": f"cus_PREP{n}"}}}


def test_drains_with_undone_events_keep_their_prepared_statements(services, deliver, monkeypatch):
    def passing_fault(ctx):
        raise RuntimeError("a passing fault")

    monkeypatch.setitem(event_table.EVENT_HANDLERS, "customer.discount.created", passing_fault)
    for round_ in range(8):  # enough batches for their writes to be prepared, undone and prepared again
        for event in [_customer(round_ * 3 + i) for i in range(3)] + [_fault(round_)]:
            assert deliver(event).status_code == 200
        draining.drain(services)
    with services.pool.connection() as conn:
        statuses = dict(conn.execute("SELECT type, array_agg(DISTINCT status) FROM events GROUP BY type").fetchall())
        # the one connection the drains used (the pool has no other yet): the statements psycopg believes
        # prepared (its cache, a private attribute: the hazard is a disagreement between the two) all exist
        on_server = {n for (n,) in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()}
        believed = {n.decode() for n in conn._prepared._names.values()}
        attempts = conn.execute("SELECT count(*) FROM event_attempts").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM activity").fetchone()[0]
    assert statuses["customer.created"] == ["processed"], statuses
    assert statuses["customer.discount.created"] == ["failed"], statuses
    assert believed <= on_server, believed - on_server
    assert attempts == 8 * 4 and entries >= 8 * 3, (attempts, entries)


def test_the_hazard(database_url):
    """psycopg's side, on a bare connection: a cache emptied by a ROLLBACK's answer read at a sync, then an
    executemany, lose the executemany's statement (if psycopg fixes this, this test fails and says so)."""
    lost = False
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE hazard (x int)")
        try:
            with conn.transaction(), conn.pipeline() as pipeline:
                for _ in range(6):
                    conn.execute("SELECT 42")  # prepared by now: the cache holds a name
                conn.execute("SAVEPOINT s")
                conn.execute("ROLLBACK TO SAVEPOINT s")
                pipeline.sync()  # the ROLLBACK's answer, read here, empties the cache; DEALLOCATE ALL waits
                conn.cursor().executemany("INSERT INTO hazard VALUES (%s)", [(1,), (2,)])
                pipeline.sync()
                conn.cursor().executemany("INSERT INTO hazard VALUES (%s)", [(3,)])
                pipeline.sync()
        except psycopg.errors.InvalidSqlStatementName:
            lost = True
    assert lost, "psycopg no longer loses the statement: a batch's writes could use executemany again"

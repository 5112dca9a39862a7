"""The queries a reconciliation run leans on at size: the unlisted customers' plan cannot turn quadratic
whatever reconciliation_seen's statistics say, and recomputing a payment that did not change leaves its
`updated_at` alone."""
from __future__ import annotations

import pytest

from domain import payments, reconciliations
from domain import reconciliation_drift as drift_rows
from domain.reconciliations import Scope
from domain.sql import load

pytestmark = pytest.mark.integration

ACCT = "acct_1QueriesCreator"


def _customers(conn, n: int) -> list[str]:
    ids = [f"cus_Q{i:05d}" for i in range(n)]
    conn.execute("INSERT INTO customers (account, stripe_customer_id) SELECT %s, unnest(%s::text[])", (ACCT, ids))
    return ids


def test_unlisted_customers_probe_the_seen_key_even_when_the_statistics_say_empty(services):
    with services.pool.connection() as conn:
        ids = _customers(conn, 3000)
        run_id = reconciliations.create(conn, Scope(), False)
        conn.commit()
        conn.execute("ANALYZE reconciliation_seen")  # analyzed empty: the planner's guess was 1 row
        conn.execute("ANALYZE customers")
        missing = ids[7::500]  # the listing did not show these six
        drift_rows.see(conn, run_id, ACCT, "customer", [i for i in ids if i not in missing])
        conn.commit()

        params = {"run": run_id, "a": ACCT, "cus": None, "after": "", "limit": 100}
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + load("reconciliations").unlisted_customers,
                                                        params))
        assert "Anti Join" not in plan and "Materialize" not in plan, plan
        assert "SubPlan" in plan and "reconciliation_seen_pkey" in plan, plan

        assert reconciliations.unlisted_customers(conn, run_id, ACCT, None, "", 100) == missing
        # keyset pages: after an id, and the page's limit
        assert reconciliations.unlisted_customers(conn, run_id, ACCT, None, missing[1], 2) == missing[2:4]
        assert reconciliations.unlisted_customers(conn, run_id, ACCT, missing[3], "", 100) == [missing[3]]
        conn.execute("UPDATE customers SET deleted_in_stripe = true WHERE stripe_customer_id = %s", (missing[0],))
        assert reconciliations.unlisted_customers(conn, run_id, ACCT, None, "", 100) == missing[1:]


def test_recompute_moves_updated_at_only_when_the_total_or_status_changes(services):
    with services.pool.connection() as conn:
        pid = conn.execute("INSERT INTO payments (account, stripe_charge_id, amount, updated_at) "
                           "VALUES (%s, 'ch_Q1', 5000, now() - interval '1 day') RETURNING id", (ACCT,)).fetchone()[0]
        conn.execute("INSERT INTO refunds (account, stripe_refund_id, payment_id, amount, status) "
                     "VALUES (%s, 're_Q1', %s, 1000, 'pending')", (ACCT, pid))
        conn.commit()
        stamp = lambda: conn.execute("SELECT updated_at FROM payments WHERE id = %s", (pid,)).fetchone()[0]  # noqa: E731
        before = stamp()

        assert payments.recompute(conn, pid) == (1000, "partially_refunded")  # a pending refund counts
        conn.commit()
        changed = stamp()
        assert changed > before

        # the refund succeeds: the total and status stay, the row keeps its updated_at
        conn.execute("UPDATE refunds SET status = 'succeeded' WHERE stripe_refund_id = 're_Q1'")
        assert payments.recompute(conn, pid) == (1000, "partially_refunded")
        conn.commit()
        assert stamp() == changed

        conn.execute("UPDATE refunds SET amount = 5000 WHERE stripe_refund_id = 're_Q1'")
        assert payments.recompute(conn, pid) == (5000, "refunded")
        conn.commit()
        assert stamp() > changed


def test_linking_a_course_finds_payments_by_index_whatever_the_id(services):
    """payments.link_course matches by charge, payment intent, invoice or subscription id: each arm an index,
    never a read of every payment of the account."""
    with services.pool.connection() as conn:
        conn.execute("INSERT INTO payments (account, stripe_charge_id, stripe_payment_intent_id, "
                     "stripe_subscription_id) SELECT %s, 'ch_Q' || n, 'pi_Q' || n, "
                     "CASE WHEN n %% 2 = 0 THEN 'sub_Q' || n END FROM generate_series(1, 3000) n", (ACCT,))
        conn.execute("ANALYZE payments")
        ids = ["sub_Q10", "pi_Q11", "ch_Q13", "in_Q0"]
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN " + payments.Q.link_course, {"a": ACCT, "ids": ids, "course": "course_q"}))
        assert "payments_subscription" in plan and "payments_pi" in plan, plan
        linked = payments.link_course(conn, ACCT, ids, "course_q")
        assert sorted(row.stripe_charge_id for row in linked) == ["ch_Q10", "ch_Q11", "ch_Q13"]

"""The console's customer search on 100,000 customers: server time of GET /admin/customers?q=… and the plan
PostgreSQL chose (EXPLAIN ANALYZE of domain/sql/profiles.sql `search`).

    python bench/customer_search.py [--customers 100000] [--database URL] [--rounds 15]

The customers are inserted by one INSERT … SELECT over generate_series: 30 first names × 40 last names
(Smith among them: about 2,500 Smiths), 4 mail domains, every 50th without a name, every 5th on a
connected account. Prints, per query, the median and worst server time over the rounds (Flask's test
client, signed in: the whole request, page rendered) and the plan's scans and execution time.
"""
from __future__ import annotations

import argparse
import re
import statistics
import time
from urllib.parse import urlencode

import common  # noqa: F401  (puts the project on sys.path)
import psycopg
from common import DATABASE_URL, fresh_stores

from domain import profiles

FIRST = ("Ada Grace Alan Edsger Barbara Donald Margaret John Katherine Linus Guido Frances Radia Ken Dennis Sophie Tim "
         "Hedy Claude Niklaus Maria Omar Yuki Priya Chen Fatima Lars Ingrid Pedro Amara")
LAST = ("Lovelace Hopper Turing Dijkstra Liskov Knuth Hamilton Backus Johnson Torvalds Rossum Allen Perlman Thompson "
        "Ritchie Wilson Berners Lamarr Shannon Wirth Garcia Haddad Tanaka Patel Wei Khan Larsen Berg Silva Okafor "
        "Nguyen Müller Rossi Dubois Kowalski Ivanova Smith Brown Jones Miller")

INSERT = """
INSERT INTO customers (account, stripe_customer_id, name, email)
SELECT CASE WHEN i %% 5 = 0 THEN 'acct_bench' || (i %% 7) ELSE '' END, 'cus_bench' || i,
       CASE WHEN i %% 50 = 0 THEN NULL ELSE f || ' ' || l END,
       lower(f) || '.' || lower(l) || i || '@'
           || (ARRAY['example.com', 'gmail.com', 'mail.org', 'school.edu'])[1 + i %% 4]
FROM (SELECT i, (string_to_array(%(first)s, ' '))[1 + (i * 7) %% 30] AS f,
             (string_to_array(%(last)s, ' '))[1 + (i * 13 + i / 40) %% 40] AS l
      FROM generate_series(1, %(n)s) i) g
"""


def load(database_url: str, n: int) -> None:
    fresh_stores(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(INSERT, {"first": FIRST, "last": LAST, "n": n})
        conn.execute("VACUUM ANALYZE customers")
        print(f"inserted {n:,} customers in {time.perf_counter() - started:.1f} s")


def plan(conn, q: str, after=profiles.FIRST_PAGE) -> str:
    params = {"p": profiles._like_pattern(q), "after_order": after[0], "after_id": after[1], "limit": 51}
    lines = [row[0] for row in conn.execute("EXPLAIN (ANALYZE) " + profiles.Q.search, params)]
    scans = sorted({m.group(0) for line in lines for m in re.finditer(r"(Bitmap Index|Index|Seq) Scan( using \w+)?",
                                                                       line)})
    total = next(line for line in lines if line.startswith("Execution Time"))
    return f"{', '.join(scans)}; {total}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database", default=DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    load(args.database, args.customers)

    from domain.settings import Settings
    from teachery_sync.bootstrap import build
    from tests.integration.test_console_session import sign_in
    from tests.support import ADMIN_TOKEN, NO_STRIPE, TEST_REDIS_URL
    from webhooks.app import create_app

    settings = Settings(database_url=args.database, redis_url=TEST_REDIS_URL, webhook_secrets=("whsec_bench",),
                        stripe_api_key="sk_test_bench", stripe_api_base=NO_STRIPE, admin_token=ADMIN_TOKEN)
    services = build(settings, pool_size=2).open()
    app = create_app(services=services)
    client = app.test_client()
    sign_in(client)
    with psycopg.connect(args.database) as conn:
        email = conn.execute("SELECT email FROM customers WHERE stripe_customer_id = 'cus_bench54321'").fetchone()[0]
        second = profiles.search_page(conn, "a").next_after
    queries = [("smith", "smith", None), ("a full email", email, None), ("one letter", "a", None),
               ("one letter, page 2", "a", second), ("a name that does not exist", "zebulon", None),
               ("a letter nobody has", "q", None), ("a common part of emails", "gmail", None)]
    print(f"{'query':<28} {'q':<32} {'rows':>5} {'median ms':>10} {'worst ms':>9}  plan")
    with psycopg.connect(args.database) as conn:
        for label, q, after in queries:
            paging = {"after": after[0], "after_id": after[1]} if after else {}
            url = "/admin/customers?" + urlencode({"q": q, **paging})
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                page = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                assert page.status_code == 200, page.status_code
            rows = page.get_data(as_text=True).count('href="/admin/customers/')
            print(f"{label:<28} {q[:32]:<32} {rows:>5} {statistics.median(times):>10.1f} {max(times):>9.1f}  "
                  f"{plan(conn, q, after or profiles.FIRST_PAGE)}")
    services.close()


if __name__ == "__main__":
    main()

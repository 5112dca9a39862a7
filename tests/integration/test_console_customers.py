"""The console's Customers pages through the Flask app: search with keyset paging, the profile, the Course
Links page, and the profile's forms (same commands as the admin API, applied once per form, never a 500)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import psycopg
import pytest

from tests.fake_stripe import StripeError
from tests.integration.test_console_session import csrf_of, sign_in
from tests.stripe_events import DAY, T0, charge, customer, event, subscription

COURSE, CLUB = "course_basics", "course_club"
PERIOD_END = T0 + 30 * DAY


@pytest.fixture
def signed(client):
    sign_in(client)
    return client


@pytest.fixture
def ada(stripe_api, send, profile):
    """Ada bought COURSE (49.00 USD) and subscribes to CLUB, in the fake Stripe and in our records: her profile."""
    cus = customer("cus_Ada", email="ada@example.com", name="Ada Lovelace")
    ch = charge("ch_Ada", customer="cus_Ada", amount=4900, created=T0, metadata={"course_id": COURSE})
    sub = subscription("sub_Ada", customer="cus_Ada", created=T0, status="active", metadata={"course_id": CLUB},
                       current_period_start=T0, current_period_end=PERIOD_END)
    stripe_api.put(cus, ch, sub)
    send(event("customer.created", cus, created=T0), event("charge.succeeded", ch, created=T0),
         event("customer.subscription.created", sub, created=T0))
    return profile("cus_Ada")


def text(response) -> str:
    """The page's visible words, tags dropped, spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def form_of(page, action: str) -> dict:
    """The hidden fields (CSRF token, idempotency key, ...) of the form that posts to `action`."""
    html = page.get_data(as_text=True)
    start = html.index(f'action="{action}"')
    form = html[start:html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def submit(client, profile_id: str, action: str, **fields):
    """Open the profile, fill the form that posts to `action`, post it; returns (response, posted fields)."""
    page = client.get(f"/admin/customers/{profile_id}")
    data = {**form_of(page, action), **fields}
    return client.post(action, data=data), data


def flashes(client, response) -> str:
    """The page the post redirected to (post/redirect/get), as text."""
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return text(client.get(response.headers["Location"]))


# --- search ------------------------------------------------------------------------------------

def insert_customers(services, rows):
    with psycopg.connect(services.settings.database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO customers (account, stripe_customer_id, name, email) VALUES (%s, %s, %s, %s)", rows)


def test_search_is_a_case_insensitive_substring_of_name_or_email_linking_to_profiles(signed, services):
    insert_customers(services, [("", "cus_1", "Jane SMITH", "jane@example.com"),
                                ("acct_1Other", "cus_2", None, "blacksmith@forge.org"),
                                ("", "cus_3", "Ada Lovelace", "ada@example.com"),
                                ("", "cus_4", "50% off_", "percent@example.com")])
    page = signed.get("/admin/customers?q=smith")
    words = text(page)
    assert "Jane SMITH" in words and "blacksmith@forge.org" in words and "Ada" not in words
    assert "acct_1Other" in words and "platform" in words and "cus_1" in words
    ids = re.findall(r'href="/admin/customers/([\w-]+)"', page.get_data(as_text=True))
    assert len(ids) == 2 and signed.get(f"/admin/customers/{ids[0]}").status_code == 200
    assert "Ada Lovelace" in text(signed.get("/admin/customers?q=ADA@EXAMPLE.COM"))
    assert "50% off_" in text(signed.get("/admin/customers?q=%25"))  # LIKE's wildcards are plain text
    assert "Jane SMITH" not in text(signed.get("/admin/customers?q=_"))


def test_no_result_says_so_and_suggests_a_first_or_last_name(signed):
    words = text(signed.get("/admin/customers?q=nobody-at-all"))
    assert "No customer's name or email contains “nobody-at-all”" in words
    assert "try their first or last name alone" in words


def test_large_results_page_by_keyset_without_repeats(signed, services):
    insert_customers(services, [("", f"cus_{i:03}", f"Smith {i:03}", f"s{i}@example.com") for i in range(120)]
                     + [("", "cus_none", "Jones", "jones@example.com")])
    seen, url = [], "/admin/customers?q=smith"
    while url:
        page = signed.get(url)
        html = unescape(page.get_data(as_text=True))
        seen += re.findall(r">(Smith \d+)</a>", html)
        url = (m := re.search(r'href="([^"]+)" rel="next"', html)) and m.group(1)
        assert url is None or "offset" not in url
    assert seen == [f"Smith {i:03}" for i in range(120)]
    assert "First page" in text(signed.get("/admin/customers?q=smith&after=smith+049&after_id=zzz"))


def test_bad_search_input_is_a_message_not_an_error(signed):
    page = signed.get("/admin/customers?q=" + "a" * 201)
    assert page.status_code == 400 and "too long" in text(page)
    page = signed.get("/admin/customers?q=a&after=" + "x" * 1001 + "&after_id=y")
    assert page.status_code == 400 and "search again" in text(page)


# --- the profile and its links ---------------------------------------------------------------

def test_profile_shows_the_records_the_links_and_the_activity_newest_first(signed, ada):
    page = signed.get(f"/admin/customers/{ada['id']}")
    assert page.status_code == 200
    words = text(page)
    for shown in ("Ada Lovelace", "ada@example.com", "cus_Ada", COURSE, CLUB, "49.00 USD", "sub_Ada",
                  "Refunds nothing and cancels nothing", "does not revoke course access",
                  "Copy", "Password reset"):
        assert shown in words, shown
    html = page.get_data(as_text=True)
    assert 'name="amount" inputmode="decimal" value="49.00"' in html  # what is left, as people write it
    assert re.search(r'<input type="hidden" name="idempotency_key" value="[0-9a-f-]{36}">', html)
    entries = re.findall(r'<time datetime="([^"]+)"', html)
    assert entries and entries == sorted(entries, reverse=True)
    assert re.search(r'href="/admin/events/evt_\w+"', html)
    assert "Stripe" in words
    links = signed.get(f"/admin/customers/{ada['id']}/links")
    assert links.status_code == 200
    assert "/password-reset?token=" in links.get_data(as_text=True) and 'data-copy="link-login"' in links.get_data(
        as_text=True)


@pytest.mark.parametrize("path", ["/admin/customers/no-such-id", "/admin/customers/no-such-id/links"])
def test_unknown_customers_are_404_pages(signed, path):
    page = signed.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 404 and "customer no-such-id not found" in text(page)


def test_posts_for_records_not_of_this_customer_are_404(signed, ada, stripe_api):
    cid = ada["id"]
    page = signed.get(f"/admin/customers/{cid}")
    fields = form_of(page, f"/admin/customers/{cid}/payments/ch_Ada/refund")
    for action in (f"/admin/customers/{cid}/payments/ch_Other/refund",
                   f"/admin/customers/{cid}/subscriptions/sub_Other/pause",
                   f"/admin/customers/{cid}/courses/course_other/grant",
                   "/admin/customers/no-such-id/payments/ch_Ada/refund",
                   f"/admin/customers/{cid}/subscriptions/sub_Ada/explode"):
        assert signed.post(action, data={**fields, "amount": "1"}).status_code == 404, action
    assert stripe_api.writes() == []


# --- refunds -----------------------------------------------------------------------------------

REFUND = "/admin/customers/{}/payments/ch_Ada/refund"


@pytest.mark.parametrize("amount, message", [
    ("", "write the amount as a number like 12.55"),
    ("12,50", "write the amount as a number like 12.55"),
    ("-5", "write the amount as a number like 12.55"),
    ("0", "the amount must be more than zero"),
    ("12.345", "at most 2 decimals"),
    ("49.01", "at most 49.00 USD is left"),
])
def test_a_bad_refund_amount_is_explained_and_nothing_is_refunded(signed, ada, stripe_api, amount, message):
    r, _ = submit(signed, ada["id"], REFUND.format(ada["id"]), amount=amount)
    words = flashes(signed, r)
    assert "Nothing was done" in words and message in words, words
    assert stripe_api.writes("/v1/refunds") == []


def test_a_refund_amount_of_thousands_of_decimals_is_explained_in_a_cookie_a_browser_keeps(signed, ada, stripe_api):
    """The "cannot be paid: at most 2 decimals" message quoted the amount as typed: 20,000 decimals made a
    session cookie of 13 kB (the flash is kept in it), which browsers drop, so the page said nothing."""
    typed = "1." + "123456789" * 2000
    r, _ = submit(signed, ada["id"], REFUND.format(ada["id"]), amount=typed)
    assert len(r.headers["Set-Cookie"]) < 4093, len(r.headers["Set-Cookie"])
    words = flashes(signed, r)
    assert "Nothing was done" in words and "write the amount as a number like 12.55" in words, words[:300]
    assert stripe_api.writes("/v1/refunds") == []


def test_a_partial_refund_goes_to_stripe_once_per_form_and_shows_pending(signed, ada, stripe_api, profile):
    r, data = submit(signed, ada["id"], REFUND.format(ada["id"]), amount="12.5", reason="requested_by_customer")
    words = flashes(signed, r)
    assert "Refund of 12.50 USD asked of Stripe" in words and "pending until Stripe confirms it" in words, words
    assert "Course access is unchanged" in words
    again = signed.post(REFUND.format(ada["id"]), data=data)  # the same form, submitted twice
    assert "Refund of 12.50 USD" in flashes(signed, again)
    [write] = stripe_api.writes("/v1/refunds")
    assert write["params"]["amount"] == "1250" and write["params"]["reason"] == "requested_by_customer"
    assert write["idempotency_key"] == f"teachery-{data['idempotency_key']}"
    [payment] = profile("cus_Ada")["payments"]
    assert payment["amount_refunded"] == 1250 and [r["status"] for r in payment["refunds"]] == ["pending"]
    page = signed.get(f"/admin/customers/{ada['id']}")
    assert 'value="36.50"' in page.get_data(as_text=True) and "until Stripe confirms it" in text(page)
    assert [e["access"] for e in profile("cus_Ada")["enrollments"] if e["course_id"] == COURSE] == ["active"]


def test_stripes_refusal_is_shown_not_a_500(signed, ada, stripe_api):
    stripe_api.fail_next.append(("POST", "/v1/refunds", StripeError(
        400, "invalid_request_error", "Charge ch_Ada has been disputed", code="charge_disputed")))
    r, _ = submit(signed, ada["id"], REFUND.format(ada["id"]), amount="10")
    words = flashes(signed, r)
    assert "Nothing was done" in words and "Charge ch_Ada has been disputed" in words, words


def test_a_form_without_its_csrf_token_is_refused(signed, ada, stripe_api):
    page = signed.get(f"/admin/customers/{ada['id']}")
    fields = form_of(page, REFUND.format(ada["id"]))
    del fields["csrf_token"]
    r = signed.post(REFUND.format(ada["id"]), data={**fields, "amount": "10"}, headers={"Accept": "text/html"})
    assert r.status_code == 400 and "CSRF" in text(r)
    assert stripe_api.writes() == []


def test_a_form_without_its_idempotency_key_is_refused(signed, ada, stripe_api):
    page = signed.get(f"/admin/customers/{ada['id']}")
    r = signed.post(REFUND.format(ada["id"]), data={"csrf_token": csrf_of(page.data), "amount": "10"})
    assert "reload the page" in flashes(signed, r)
    assert stripe_api.writes() == []


# --- subscriptions -----------------------------------------------------------------------------

SUB = "/admin/customers/{}/subscriptions/sub_Ada/{}"


def test_cancel_at_period_end_keeps_access_and_refunds_nothing(signed, ada, stripe_api, profile):
    r, _ = submit(signed, ada["id"], SUB.format(ada["id"], "cancel"), when="period_end")
    words = flashes(signed, r)
    assert "will cancel at the end of its period" in words and "Nothing was refunded" in words, words
    [write] = stripe_api.writes("/v1/subscriptions/sub_Ada")
    assert write["method"] == "POST" and write["params"]["cancel_at_period_end"] == "true"
    assert profile("cus_Ada")["subscriptions"][0]["cancel_at_period_end"] is True
    assert stripe_api.writes("/v1/refunds") == []


def test_pause_with_a_resume_date_then_resume(signed, ada, stripe_api, profile):
    action = SUB.format(ada["id"], "pause")
    r, _ = submit(signed, ada["id"], action, behavior="keep_as_draft", resumes_on="2020-01-01")
    assert "the resume date must be after today" in flashes(signed, r)
    r, _ = submit(signed, ada["id"], action, behavior="sideways")
    assert "behavior must be one of void, keep_as_draft, mark_uncollectible" in flashes(signed, r)
    assert stripe_api.writes() == []
    day = (datetime.now(UTC) + timedelta(days=10)).date()
    r, _ = submit(signed, ada["id"], action, behavior="keep_as_draft", resumes_on=day.isoformat())
    words = flashes(signed, r)
    assert f"paused (keep_as_draft) until {day.isoformat()} 00:00:00 UTC" in words, words
    [write] = stripe_api.writes("/v1/subscriptions/sub_Ada")
    resumes = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    assert write["params"] == {"pause_collection": {"behavior": "keep_as_draft", "resumes_at": str(resumes)}}
    r, _ = submit(signed, ada["id"], SUB.format(ada["id"], "resume"))
    assert "resumed" in flashes(signed, r)
    assert profile("cus_Ada")["subscriptions"][0]["pause_collection"] is None


# --- course access, edit, welcome email --------------------------------------------------------

def test_revoke_then_grant_touch_neither_payments_nor_stripe(signed, ada, stripe_api, profile):
    r, _ = submit(signed, ada["id"], f"/admin/customers/{ada['id']}/courses/{COURSE}/revoke")
    assert "revoked. Nothing was refunded and no subscription was canceled" in flashes(signed, r)
    r, _ = submit(signed, ada["id"], f"/admin/customers/{ada['id']}/courses/{COURSE}/grant")
    assert "granted. Nothing was charged" in flashes(signed, r)
    after = profile("cus_Ada")
    assert [e["access"] for e in after["enrollments"] if e["course_id"] == COURSE] == ["active"]
    assert after["payments"] == ada["payments"] and stripe_api.writes() == []
    assert any(a["actor"] and a["origin"] == "teachery" for a in after["activity"])


def test_edit_sends_only_what_changed_and_refuses_bad_email(signed, ada, stripe_api):
    action = f"/admin/customers/{ada['id']}/edit"
    r, _ = submit(signed, ada["id"], action, name="Ada Lovelace", email="not-an-email")
    assert "email must be an email address" in flashes(signed, r)
    r, _ = submit(signed, ada["id"], action, name="Ada Lovelace", email="ada@example.com")
    assert "as they were" in flashes(signed, r)
    r, _ = submit(signed, ada["id"], action, name="Ada King", email="ada@example.com")
    assert "Saved in Stripe: Ada King" in flashes(signed, r)
    [write] = stripe_api.writes("/v1/customers/cus_Ada")
    assert write["params"] == {"name": "Ada King"}


def test_resend_welcome_email(signed, ada):
    r, _ = submit(signed, ada["id"], f"/admin/customers/{ada['id']}/welcome-email")
    assert "Welcome email with the login link queued for ada@example.com" in flashes(signed, r)


def test_a_customer_deleted_in_stripe_is_marked_and_not_editable(signed, ada, send, profile):
    gone = customer("cus_Ada", email="ada@example.com", name="Ada Lovelace")
    send(event("customer.deleted", {**gone, "deleted": True}, created=T0 + DAY))
    assert profile("cus_Ada")["deleted_in_stripe"] is True
    page = signed.get(f"/admin/customers/{ada['id']}")
    words = text(page)
    assert "deleted in Stripe" in words and "customers are never deleted here" in words
    assert f'action="/admin/customers/{ada["id"]}/edit"' not in page.get_data(as_text=True)
    assert "Revoke access" in words  # access is unchanged (docs/rules.md, rule 5)


def test_a_payment_stripe_sent_without_a_currency_is_explained_not_a_500(signed, ada, stripe_api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE payments SET currency = NULL WHERE stripe_charge_id = 'ch_Ada'")
    r, _ = submit(signed, ada["id"], REFUND.format(ada["id"]), amount="49.01")
    words = flashes(signed, r)
    assert "Nothing was done" in words and "at most 49.00" in words and "is left" in words, words
    assert stripe_api.writes("/v1/refunds") == []

"""A token scoped to one connected account, in a real browser: two creators' accounts hold a customer of the
same name, email and course; the creator's support person finds only their own, another account's profile is
the 404 page, and there is no Jobs link nor RQ dashboard. Screenshots: scoped-search, scoped-404,
scoped-health (1280 and 390 px)."""
from __future__ import annotations

from tests.blackbox.helpers import buyer
from tests.browser.conftest import SCOPED_ACCOUNT, SCOPED_TOKEN

OTHER = "acct_1BrowserOtherCreator"
COURSE = "course_watercolour"


def test_a_scoped_token_sees_only_its_own_account(console, svc):
    mine, _, _ = buyer(svc, SCOPED_ACCOUNT, "Ada Lovelace", "ada@example.com", course=COURSE)
    theirs, _, _ = buyer(svc, OTHER, "Ada Lovelace", "ada@example.com", course=COURSE)
    my_id = svc.profile(mine["id"], SCOPED_ACCOUNT)["id"]
    their_id = svc.profile(theirs["id"], OTHER)["id"]

    console.sign_in(token=SCOPED_TOKEN)
    console.find("nav .links")
    assert "Jobs" not in console.text("nav")
    assert SCOPED_ACCOUNT in console.text("main")  # the page says which account the token sees
    console.fill({"q": "ada"})
    console.click("main form button[type=submit]")
    console.wait_for_text("Ada Lovelace", "table")
    rows = console.driver.find_elements("css selector", "table tbody tr")
    assert len(rows) == 1 and SCOPED_ACCOUNT in rows[0].text and OTHER not in console.text("main")
    console.screenshot("scoped-search")
    console.click("table a")
    console.wait_for_text("Course access")
    assert console.path == f"/admin/customers/{my_id}"

    console.open(f"/admin/customers/{their_id}")
    console.wait_for_text("not found")
    assert "Ada" not in console.text("main") and OTHER not in console.text("main")
    console.screenshot("scoped-404")
    console.open("/admin/rq/")
    console.wait_for_text("no such page")

    console.open("/admin/health")
    console.wait_for_text("figures, read now")
    assert "Workers alive" not in console.text("main")
    console.screenshot("scoped-health")
    console.open(f"/admin/events?account={OTHER}")
    console.find("main")
    assert theirs["id"] not in console.text("main")

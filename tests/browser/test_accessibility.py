"""Every page a person uses: a label for every field, one h1 and headings in order, buttons with text, a
first Tab that reaches the skip link, and no sideways scroll at 390 px."""
from __future__ import annotations

import pytest

from tests.blackbox.helpers import buyer

ACCT = "acct_1A11yCreator"
PROBLEMS = """
const problems = [];
for (const el of document.querySelectorAll('input, select, textarea')) {
  if (el.type === 'hidden' || el.closest('[hidden]')) continue;
  const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label')
                   || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!labelled) problems.push('no label: ' + el.outerHTML.slice(0, 120));
}
for (const b of document.querySelectorAll('button, a[href]')) {
  if (!(b.textContent.trim() || b.getAttribute('aria-label') || b.title)) problems.push('no text: ' + b.outerHTML.slice(0, 120));
}
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(h1 + ' h1 headings');
let last = 1;
for (const h of document.querySelectorAll('main h1, main h2, main h3, main h4')) {
  const level = +h.tagName[1];
  if (level > last + 1) problems.push('heading skips a level: ' + h.outerHTML.slice(0, 80));
  last = level;
}
return problems;
"""


@pytest.fixture
def customer(svc):
    cus, charge, sub = buyer(svc, ACCT, "Ada Lovelace", "ada@example.com", course="course_a", subscribes_to="course_b")
    return svc.profile(cus["id"], ACCT)


def test_every_page_is_labelled_ordered_and_fits_a_phone(signed_in, customer):
    event_id = next(a["stripe_event_id"] for a in customer["activity"] if a["stripe_event_id"])
    pages = ["/admin/customers?q=ada", "/admin/customers?q=nobody-at-all", f"/admin/customers/{customer['id']}",
             f"/admin/customers/{customer['id']}/links", "/admin/events", f"/admin/events/{event_id}",
             "/admin/events/replay-failed", "/admin/reconciliations", "/admin/health"]
    found = {}
    for path in pages:
        signed_in.open(path)
        signed_in.find("main")
        problems = signed_in.driver.execute_script(PROBLEMS)
        signed_in.driver.set_window_size(390, 844)
        if not signed_in.no_horizontal_scroll():
            problems.append("scrolls sideways at 390 px")
        signed_in.driver.set_window_size(1280, 900)
        if problems:
            found[path] = problems
    signed_in.open("/admin/sign-in")
    assert not found, found


def test_the_keyboard_reaches_the_skip_link_first(signed_in):
    from selenium.webdriver.common.keys import Keys

    signed_in.open("/admin/events")  # a page whose form does not take the focus at once (the search page's does)
    signed_in.driver.find_element("tag name", "body").send_keys(Keys.TAB)
    focused = signed_in.driver.switch_to.active_element
    assert focused.get_attribute("class") == "skip" and focused.get_attribute("href").endswith("#main")

"""Signing in and out of the console in a real browser."""
from __future__ import annotations


def test_a_wrong_token_is_refused_then_the_right_one_opens_the_console(console):
    console.open("/admin/events")
    assert console.path.startswith("/admin/sign-in")
    console.sign_in(token="not-the-token")
    assert "not an admin token" in console.text("#sign-in-error")
    console.screenshot("sign-in-refused", narrow=False)
    console.open("/admin/events")
    assert console.path.startswith("/admin/sign-in")
    console.sign_in()
    console.find("nav .links")
    assert console.path == "/admin/customers"
    cookie = console.driver.get_cookie("teachery_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    console.screenshot("sign-in")


def test_sign_out(signed_in):
    signed_in.click("nav form button[type=submit]")
    signed_in.wait_for_text("You are signed out")
    signed_in.open("/admin/customers")
    assert signed_in.path.startswith("/admin/sign-in")


def test_every_page_fits_a_phone(signed_in):
    for path in ("/admin/customers", "/admin/events", "/admin/reconciliations", "/admin/health"):
        signed_in.open(path)
        signed_in.driver.set_window_size(390, 844)
        assert signed_in.no_horizontal_scroll(), path
        signed_in.driver.set_window_size(1280, 900)


def test_a_form_without_its_csrf_token_is_refused(signed_in):
    signed_in.driver.execute_script(
        "document.querySelectorAll('nav form input[name=csrf_token]').forEach(e => e.remove())")
    signed_in.click("nav form button[type=submit]")  # sign out, without the token
    signed_in.wait_for_text("did not come with its CSRF token")
    signed_in.open("/admin/customers")
    assert signed_in.path == "/admin/customers"  # still signed in: the refused form changed nothing

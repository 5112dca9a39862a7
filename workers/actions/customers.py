"""Admin actions on a customer: edit (through Stripe), course access, the welcome email; and its links."""
from __future__ import annotations

from domain import enrollments, links, outbox, profiles
from domain.ids import is_id
from domain.versions import FETCHED
from workers.actions.answers import enrollment_json
from workers.actions.idempotency import Answer, StripeCall, once, perform
from workers.actions.lookups import customer_of
from workers.commands import CommandRefused, EditCustomer, GrantCourse, SendWelcomeEmail
from workers.handlers.customers import snapshot_customer

WELCOME_SUBJECT = "Welcome to Teachery: your course login"


@once
def edit_customer(services, cmd: EditCustomer) -> Answer:
    """PATCH /customers/{id}: send the new name/email to the Stripe customer, then record Stripe's answer."""
    customer = customer_of(services.pool, cmd.target, cmd.scope)
    if customer.deleted_in_stripe:
        raise CommandRefused(f"customer {cmd.target} was deleted in Stripe and cannot be edited there", 409)

    def apply(change, answer):
        snapshot_customer(change, answer, (customer.stripe_created, FETCHED))
        change.flush()  # the profile shows the activity
        return 200, profiles.profile_by_id(change.conn, customer.id)

    call = StripeCall("post", f"/v1/customers/{customer.stripe_customer_id}", cmd.params)
    return perform(services, cmd, customer.account, apply, call, stamp=customer.stripe_created)


@once
def set_course_access(services, cmd: GrantCourse) -> Answer:
    """Course access back on (grant, creating the enrollment if need be) or off (revoke); local only:
    refunds and subscriptions are untouched (docs/rules.md, rule 3). Doing it twice is fine."""
    customer = customer_of(services.pool, cmd.target, cmd.scope)
    verb = "granted" if cmd.grant else "revoked"

    def apply(change, _):
        if cmd.grant:
            if not is_id(cmd.course_id) and enrollments.lock(change.conn, customer.id, cmd.course_id) is None:
                # a course id Stripe sent may be free text; one typed here must look like an id (domain/ids.py)
                raise CommandRefused(f"customer {cmd.target} has no enrollment in course {cmd.course_id}, and a "
                                     "new one takes a course id of A-Z, a-z, 0-9, _ and -", 404)
            row, changed = enrollments.grant(change.conn, customer.account, customer.id, cmd.course_id)
        else:
            row, changed = enrollments.revoke(change.conn, customer.id, cmd.course_id)
            if row is None:
                raise CommandRefused(f"customer {cmd.target} has no enrollment in course {cmd.course_id}", 404)
        if changed:
            change.log(customer.id, f"enrollment.{verb}", f"Access to course {cmd.course_id} {verb}", "enrollment",
                       cmd.course_id)
        return 200, enrollment_json(row)

    return perform(services, cmd, customer.account, apply)


@once
def send_welcome_email(services, cmd: SendWelcomeEmail) -> Answer:
    """Queue the welcome email with the course login link in the outbox (Teachery's mailer sends it)."""
    customer = customer_of(services.pool, cmd.target, cmd.scope)
    if not customer.email:
        raise CommandRefused(f"customer {cmd.target} has no email address", 409)
    login = links.login_link(services.settings.teachery_base_url, customer.id)

    def apply(change, _):
        courses = enrollments.active_courses(change.conn, customer.id)
        outbox_id = outbox.add(change.conn, kind="welcome_email", customer_id=customer.id, to_address=customer.email,
                               subject=WELCOME_SUBJECT, admin_action_id=change.action_id,
                               payload={"name": customer.name, "login_link": login, "courses": courses})
        change.log(customer.id, "email.welcome", f"Welcome email with the login link queued for {customer.email}"
                   f" (outbox {outbox_id})", "outbox", str(outbox_id))
        return 202, {"email": {"outbox_id": outbox_id, "status": "queued", "to": customer.email,
                               "subject": WELCOME_SUBJECT, "login_link": login, "courses": courses}}

    return perform(services, cmd, customer.account, apply)


def customer_links(services, customer_id: str, now: int, scope: str | None = None) -> dict:
    """GET /customers/{id}/links: login, password reset (valid 24 hours), billing, cancel subscription."""
    customer = customer_of(services.pool, customer_id, scope)
    settings = services.settings
    return links.customer_links(settings.teachery_base_url, links.link_key(settings), customer.id, now)

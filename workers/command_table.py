"""The one table mapping a command (workers/commands.py) to its handler, and `handle`, the way in.

Commands come from the admin API (admin actions), a reconciliation (fixes) and the command line
(backfill); Stripe's events have their own table (event_table.py). Every handler applies its changes
through the functions the event handlers use, in a Change (workers/context.py).
"""
from __future__ import annotations

from workers import commands
from workers.actions.customers import edit_customer, send_welcome_email, set_course_access
from workers.actions.payments import refund_payment
from workers.actions.subscriptions import cancel_subscription, pause_subscription, resume_subscription
from workers.backfill import run_backfill
from workers.drift import fix_object
from workers.services import Services

COMMAND_HANDLERS = {
    commands.EditCustomer: edit_customer,
    commands.GrantCourse: set_course_access,
    commands.RevokeCourse: set_course_access,
    commands.SendWelcomeEmail: send_welcome_email,
    commands.RefundPayment: refund_payment,
    commands.CancelSubscription: cancel_subscription,
    commands.PauseSubscription: pause_subscription,
    commands.ResumeSubscription: resume_subscription,
    commands.FixObject: fix_object,
    commands.Backfill: run_backfill,
}


def handle(services: Services, command, **options):
    """Run a command's handler; `options` are how the caller follows it (a backfill's progress report)."""
    return COMMAND_HANDLERS[type(command)](services, command, **options)

"""The soak's generated history: many customers, each one copy of a realistic scenario
(tests/stripe_histories.py, plus the cancellations and customer edits below), spread over the platform
and two connected accounts and two API versions, each with the profile it must end in.

Every copy has its own ids (a tag), so thousands share one database; the objects' final states are put
in the fake Stripe under the copy's account, for the workers' API calls.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from tests.stripe_events import BASIL, DAY, OLD, T0, event
from tests.stripe_histories import PRICE, SCENARIOS, Builder, Expected, Ids, Pay, Story

ACCOUNTS = (None, "acct_1ChaosCreatorA", "acct_1ChaosCreatorB")
VERSIONS = (OLD, BASIL)


def canceled_at_period_end(b: Builder) -> Story:
    """Subscribed, then set to cancel at the period's end (access stays), then canceled when it ends."""
    course = "course_cancel_at_end"
    _, ch0 = b.subscribed(course)
    t1, end = T0 + 5 * DAY, T0 + 30 * DAY
    b.at(t1, ("customer.subscription.updated", b.sub("active", course, cancel_at_period_end=True, cancel_at=end,
                                                     canceled_at=t1)))
    b.at(end, ("customer.subscription.deleted", b.sub("canceled", course, cancel_at_period_end=True, cancel_at=end,
                                                      canceled_at=t1, ended_at=end)))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False),
                            {ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course, b.ids("in1"), b.ids("sub"))},
                            {b.ids("sub"): (course, "canceled")}, [course]))


def paused_resumed_canceled_now_and_email_edited(b: Builder) -> Story:
    """Subscribed; collection paused, resumed; the customer changes their email; canceled at once."""
    course = "course_cancel_now"
    _, ch0 = b.subscribed(course)
    paused = {"behavior": "keep_as_draft", "resumes_at": None}
    b.at(T0 + 2 * DAY, ("customer.subscription.updated", b.sub("active", course, pause_collection=paused)))
    b.at(T0 + 4 * DAY, ("customer.subscription.updated", b.sub("active", course)))
    edited = b.customer(email=f"new.{b.email}")
    b.at(T0 + 5 * DAY, ("customer.updated", edited))
    b.final(edited)
    t_end = T0 + 6 * DAY
    b.at(t_end, ("customer.subscription.deleted", b.sub("canceled", course, canceled_at=t_end, ended_at=t_end)))
    return b.story(Expected((b.name, edited["email"], False),
                            {ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course, b.ids("in1"), b.ids("sub"))},
                            {b.ids("sub"): (course, "canceled")}, [course]))


ALL = {**SCENARIOS, **{f.__name__: f for f in (canceled_at_period_end, paused_resumed_canceled_now_and_email_edited)}}


@dataclass
class Copy:
    tag: str
    account: str | None
    version: str
    story: Story
    events: list  # envelopes, in the order Stripe made them


def generate(min_events: int, seed: int) -> list[Copy]:
    """Copies of the scenarios, round robin over the scenarios and (apart) over accounts × versions (19
    scenarios and 6 pairs: every pairing within 114 copies), until they hold at least `min_events` events."""
    names = list(ALL)
    rng = random.Random(seed)
    copies, total, n = [], 0, 0
    while total < min_events:
        name = names[n % len(names)]
        account, version = ACCOUNTS[n % len(ACCOUNTS)], VERSIONS[(n // len(ACCOUNTS)) % len(VERSIONS)]
        tag = f"K{seed % 100:02d}{n:05d}{rng.choice('abcdefgh')}z"
        story = ALL[name](Builder(Ids(tag), version))
        envelopes = [event(type_, obj, created=created, account=account, api_version=version)
                     for type_, obj, created in story.events]
        copies.append(Copy(tag, account, version, story, envelopes))
        total += len(envelopes)
        n += 1
    return copies


def deliveries(copies: list[Copy], seed: int, *, twice: float = 0.3, window: int = 400) -> list[dict]:
    """What Stripe sends: every event, about `twice` of them a second time, in shuffled order. The copies'
    events are interleaved as their customers act, then each window of `window` events, with its events sent
    twice, is shuffled (so an event can arrive well before the ones Stripe made first)."""
    rng = random.Random(seed)
    queues = [list(c.events) for c in copies]
    interleaved = []
    while queues:
        i = rng.randrange(len(queues))
        interleaved.append(queues[i].pop(0))
        if not queues[i]:
            queues.pop(i)
    out = []
    for start in range(0, len(interleaved), window):
        chunk = interleaved[start:start + window]
        chunk += rng.sample(chunk, round(len(chunk) * twice))
        rng.shuffle(chunk)
        out.extend(chunk)
    return out

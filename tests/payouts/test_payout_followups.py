"""A second reviewer's attacks on the money paths (follow-up proposals, expiry
refunds, cancellation, transfers, claims and pages).

Amounts are USD cents with a 10% fee unless said otherwise (the ``world`` of
tests/payouts/helpers.py). Tests named after a fault failed on the code as
reviewed (each docstring says what happened and what should) and now guard
its fix; the two under
"attacks that held" prove a property that held. The race test runs on its own
database (``<test database>_payout_followups_race``).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import service as claims
from marketplace.claims.models import Claim, ClaimState
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutAccount, PayoutRail, PayoutState, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW, balance, escrow


def merged(world, number: int, amount: int, user, github_id: int) -> Payout:
    """Item ``number`` funded with ``amount``, claimed by ``user``, solved by their merged PR: the proposal."""
    item = world.issue(number)
    world.fund(item, amount)
    world.claim(item, user)
    world.pull(number + 1000, f"Fixes #{number}", author_id=github_id, merged=True)
    [payout] = world.payouts_of(item)
    return payout


def manual(world, user):
    world.session.add(PayoutAccount(user_id=user.id, rail=PayoutRail.manual, manual_details="bank 1"))
    world.session.flush()


def late_pledge(world, item, amount: int) -> Pledge:
    """A card pledge made before the work was done (pending), to be received later."""
    pledge = pledges.create(item, world.funder.id, Money(amount, "USD"), rail=Rail.card, actor="test")
    pledge.payment_intent_id = f"pi_late_{pledge.id}"
    world.session.flush()
    return pledge


def _issue_event(world, item, *, state, reason, when):
    from tests.webhooks.helpers import payload, post_github

    body = payload("github/webhooks/issues/closed.json")
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["action"] = "closed" if state == "closed" else "reopened"
    body["issue"].update(number=item.number, id=item.forge_id, state=state, state_reason=reason,
                         updated_at=when, closed_at=when if state == "closed" else None, html_url=item.html_url)
    assert post_github(world.client, "issues", body).status_code == 202


def _dispute(pledge, amount, status, dispute_id):
    return {"id": dispute_id, "object": "dispute", "amount": amount, "currency": "usd",
            "payment_intent": pledge.payment_intent_id, "status": status}


@pytest.fixture
def stripe_api(app):
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    saved = {k: app.config.get(k) for k in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_TIMEOUT_SECONDS")}
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url, STRIPE_TIMEOUT_SECONDS=2)
    yield server
    app.config.update(saved)
    server.stop()


def stripe_recipient(world, stripe_api, user, *, active=True):
    from marketplace.payments import stripe_client

    account_id = stripe_client.create_connected_account(user.id, country="KE", email=user.email)
    if active:
        stripe_api.activate(account_id)
    world.session.add(PayoutAccount(user_id=user.id, rail=PayoutRail.stripe, stripe_account_id=account_id,
                                    transfers_active=active))
    world.session.flush()
    return account_id



# --- follow-up proposals -------------------------------------------------------------------

def test_follow_up_payout_suggests_the_claimant_the_maintainer_chose_not_to_pay(world):
    """Ama's PR solved the item, but the maintainer paid the whole USD 100.00 to kofi
    (who did the work). A USD 50.00 pledge received after execution is proposed as a
    follow-up prefilled with ama at 100% (the first proposal's suggestion), not with
    the people the maintainer actually paid: one click on Approve pays the wrong person."""
    ama = world.implementor("ama@example.org", github_id=9006)
    kofi = world.implementor("kofi@example.org", github_id=9007)
    manual(world, ama)
    manual(world, kofi)
    item = world.issue(906)
    world.fund(item, 10000)
    late = late_pledge(world, item, 5000)
    world.claim(item, ama)
    world.pull(1906, "Fixes #906", author_id=9006, merged=True)
    [first] = world.payouts_of(item)
    assert first.suggested_recipient_id == ama.id
    world.approve(first, [(kofi.id, 1)])
    assert payouts.execute(first.id, utcnow() + AFTER_WINDOW)
    assert pledges.mark_received(late.id, Money(5000, "USD"), actor="stripe")
    [_, follow_up] = world.payouts_of(item)
    assert follow_up.state is PayoutState.proposed
    assert (follow_up.suggested_recipient_id, [(s.recipient_id, s.amount_minor) for s in follow_up.shares]) == (
        kofi.id, [(kofi.id, 4500)])


def test_payout_approved_before_the_item_is_closed_as_not_planned_still_pays_out(world):
    """USD 100.00, ama's PR merged, the payout approved (7-day window). During the
    window the fix is reverted: the issue is reopened and closed as not planned. The
    funders are e-mailed that they can take their money back (and that it comes back
    by itself in 14 days), their self-service refund is refused, and on day 8 the
    approved payout executes anyway: 90.00 to ama, 10.00 fee. Closing as not planned
    within the dispute window must stop the payout (held or cancelled) and keep the
    money in escrow for the funders."""
    ama = world.implementor("ama@example.org", github_id=9002)
    manual(world, ama)
    payout = merged(world, 902, 10000, ama, 9002)
    world.approve(payout, [(ama.id, 1)])
    item = world.session.get(BacklogItem, payout.item_id)
    _issue_event(world, item, state="closed", reason="completed", when="2030-01-01T00:00:00Z")
    _issue_event(world, item, state="open", reason=None, when="2030-01-02T00:00:00Z")
    _issue_event(world, item, state="closed", reason="not_planned", when="2030-01-03T00:00:00Z")
    world.session.expire_all()
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == item.id)).all()
    assert pledges.self_refund_refusal(pledge) is None  # the e-mail's promise: the funder may take it back
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert world.session.get(Payout, payout.id).state in (PayoutState.held, PayoutState.cancelled)
    assert (escrow(item.id), balance(AccountKind.contributor_payable, user_id=ama.id)) == (10000, 0)


# --- disputes ---------------------------------------------------------------------------------

def test_dispute_created_delivered_after_its_closing_leaves_the_pledge_disputed_forever(world, client):
    """Stripe delivers events late and out of order. The dispute on a USD 50.00 pledge
    is won; its ``charge.dispute.created`` arrives after the ``closed`` (a failed first
    delivery retried). The pledge goes to ``disputed`` and stays there for ever: no
    payout can take it (approval finds no undisputed money), no expiry or
    self-service refund returns it. It should be held, payable: 5000, fee 500, share 4500."""
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=9003)
    manual(world, ama)
    item = world.issue(903)
    pledge = world.fund(item, 5000)
    world.claim(item, ama)
    post_event(client, "charge.dispute.closed", _dispute(pledge, 5000, "won", "dp_e3"), "evt_e3_2")
    post_event(client, "charge.dispute.created", _dispute(pledge, 5000, "needs_response", "dp_e3"), "evt_e3_1")
    world.session.expire_all()
    assert world.session.get(Pledge, pledge.id).state is PledgeState.held
    world.pull(1903, "Fixes #903", author_id=9003, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor) == (5000, 500, 4500)


# --- claims -----------------------------------------------------------------------------------

def test_claim_whose_pull_request_merged_on_an_unfunded_item_stays_submitted_for_ever(world):
    """Ama's approved claim on an item nobody funded; her PR opens (claim submitted)
    and merges. No payout is proposed (no escrow), so nothing completes the claim: it
    stays ``submitted``, holds the item, never lapses (its change merged) and counts
    against her cap of open claims for good; three such merges and she can never
    claim again. The merge completes the work: the claim should be completed."""
    ama = world.implementor("ama@example.org", github_id=9001)
    item = world.issue(901)
    claim = world.claim(item, ama)
    world.pull(1901, "Fixes #901", author_id=9001, merged=False, state="open")
    world.pull(1901, "Fixes #901", author_id=9001, merged=True)
    assert world.payouts_of(item) == []
    claims.lapse_due(utcnow() + timedelta(days=60))
    claim = world.session.get(Claim, claim.id)
    world.session.refresh(claim)
    assert (claim.state, claim.holding_item_id, claims.active_count(ama.id)) == (ClaimState.completed, None, 0)


# --- Stripe transfers and refunds after payout ------------------------------------------------

def test_refusal_after_a_timed_out_transfer_gets_a_new_key_and_pays_the_share_twice(world, stripe_api, monkeypatch):
    """The first transfer of ama's 90.00 times out after Stripe made it (tr_1, key
    ``…-transfer-0``). The retry is answered 401 (the API key was being rolled): a
    4xx "refusal", so ``refusals`` goes to 1 and the next retry uses
    ``…-transfer-1``: Stripe makes a second transfer of 90.00. A refusal proves only
    that *that* request made nothing; the earlier attempt's outcome is still unknown,
    so the key must not change (or the transfer must be looked up first). The ledger
    records one payment and ``check()`` reports nothing."""
    from marketplace.payments import stripe_client

    ama = world.implementor("ama@example.org", github_id=9009)
    stripe_recipient(world, stripe_api, ama)
    payout = merged(world, 909, 10000, ama, 9009)
    world.approve(payout, [(ama.id, 1)])
    [share] = payout.shares
    real = stripe_client.create_transfer

    def made_then_lost(*args, **kwargs):
        real(*args, **kwargs)
        raise stripe_client.PaymentsUnavailable("read timed out")

    monkeypatch.setattr(stripe_client, "create_transfer", made_then_lost)
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert payouts.transfer(share.id) is False
    monkeypatch.setattr(stripe_client, "create_transfer", real)
    assert len(stripe_api.transfers) == 1
    real_once, answered = stripe_api.once, []

    def unauthorised_once(key, path, form, create):  # Stripe answers 401 before looking at the key
        if not answered:
            answered.append(key)
            return 401, {"error": {"message": "Invalid API Key provided: sk_test_****",
                                   "type": "invalid_request_error"}}, False
        return real_once(key, path, form, create)

    stripe_api.once = unauthorised_once
    payouts.retry_due(utcnow() + timedelta(hours=1))
    payouts.retry_due(utcnow() + timedelta(hours=3))
    assert share.state is ShareState.paid and balance(AccountKind.payouts_paid) == 9000
    assert check() == []
    assert [(t["id"], t["amount"]) for t in stripe_api.transfers.values()] == [("tr_local_0001", 9000)]
    assert share.stripe_transfer_id == "tr_local_0001"


def test_refund_after_payout_with_a_reused_bank_reference_reverses_the_transfer_and_refunds_nothing(
        world, stripe_api):
    """A bank pledge of USD 100.00 paid ama 90.00 by Stripe. The host refunds 20.00 after
    payout by reversal (reference BACK-1), then 10.00 more, typing BACK-1 again. The
    second call reverses 10.00 more of ama's transfer, then finds the refund
    ``offline:…:BACK-1`` recorded already and returns it as if done: the pledge is
    not refunded, the 10.00 taken from ama sits in the commons' funds, the admin is
    told "recorded", and ``check()`` sees nothing. A refund id seen before must be
    refused before anything is reversed."""
    ama = world.implementor("ama@example.org", github_id=9014)
    stripe_recipient(world, stripe_api, ama)
    payout = merged(world, 914, 10000, ama, 9014)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert payouts.transfer(share.id)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    pledge.rail = Rail.bank_transfer
    world.session.flush()
    after_payout.refund_after_payout(pledge.id, 2000, path="reversal", share_id=share.id, admin=world.admin,
                                offline_reference="BACK-1")
    with pytest.raises(payouts.PayoutError):
        after_payout.refund_after_payout(pledge.id, 1000, path="reversal", share_id=share.id, admin=world.admin,
                                    offline_reference="BACK-1")
    [transfer] = stripe_api.transfers.values()
    assert transfer["amount_reversed"] == 2000
    assert (balance(AccountKind.payouts_paid), balance(AccountKind.commons_funds), balance(AccountKind.refunds)) == (
        7000, 0, 2000)


# --- real races: two sessions on their own PostgreSQL database -----------------------------------

@pytest.fixture(scope="module")
def race_app(database_url):
    """An app on its own database (not the shared payout race database), with a 7-day dispute window."""
    from tests.races import race_database_app, race_name

    with race_database_app(database_url, race_name(database_url, "payout_followups_race"),
                           PAYOUT_DISPUTE_WINDOW_DAYS=7) as app:
        yield app


@pytest.mark.postgres
def test_expiry_cron_refunds_a_pledge_that_an_approval_covered_after_the_cron_chose_it(race_app, monkeypatch):
    """The item was closed as completed; its first payout was cancelled, so its expired
    USD 100.00 pledge is due back (no payout open). The expiry cron picks it; meanwhile
    a late USD 50.00 pledge arrives, the issue is closed again (reopened and closed by
    its maintainer), a payout is proposed and approved (covering both pledges, 150.00)
    and commits. The cron then refunds the 100.00
    without looking again: "no payout open" is not true any more, and the approved
    payout is held at execution. Under the pledge's lock the cron must see the
    approval and leave the pledge to it (as the self-service refund does)."""
    import time as _time

    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.payments import stripe_client
    from tests.payouts.test_payout_service import _race_world, _run_together

    with race_app.app_context():
        [item], people = _race_world("expiry")
        item.state = ItemState.closed
        db.session.add(PayoutAccount(user_id=people["ama"].id, rail=PayoutRail.manual, manual_details="bank"))
        old = pledges.create(item, people["funder"].id, Money(10000, "USD"), rail=Rail.card, actor="t",
                             expires_at=utcnow() - timedelta(days=1))
        old.payment_intent_id = "pi_expiry_old"
        late = pledges.create(item, people["funder"].id, Money(5000, "USD"), rail=Rail.card, actor="t")
        late.payment_intent_id = "pi_expiry_late"
        pledges.mark_received(old.id, Money(10000, "USD"), actor="t")
        [first] = payouts.propose(item, reason="closed_completed")
        payouts.cancel(first.id, actor=people["keeper"], note="wrong person")
        ids = dict(item=item.id, old=old.id, late=late.id, keeper=people["keeper"].id, ama=people["ama"].id)
        db.session.commit()
        db.session.remove()
    monkeypatch.setattr(stripe_client, "create_refund", lambda *a, **k: "re_expiry_race")
    real_back = pledges._refund_back
    monkeypatch.setattr(pledges, "_refund_back", lambda *a, **k: (_time.sleep(0.6), real_back(*a, **k))[1])

    def cron():
        return pledges.refund_expired(utcnow())

    def approve():
        _time.sleep(0.1)
        pledges.mark_received(ids["late"], Money(5000, "USD"), actor="stripe")
        [follow_up] = payouts.on_item_closed(db.session.get(BacklogItem, ids["item"]))
        return payouts.approve(follow_up.id, maintainer=db.session.get(User, ids["keeper"]),
                               recipients=[(ids["ama"], 1)]).gross_minor

    outcomes = _run_together(race_app, cron, approve)
    assert outcomes[1] == ("ok", 15000), outcomes
    with race_app.app_context():
        assert db.session.get(Pledge, ids["old"]).refunded_minor == 0, outcomes
        follow_up = db.session.scalar(select(Payout).where(Payout.item_id == ids["item"],
                                                           Payout.state == PayoutState.approved))
        assert payouts.execute(follow_up.id, utcnow() + AFTER_WINDOW)
        assert (follow_up.gross_minor, follow_up.fee_minor, follow_up.shares[0].amount_minor) == (15000, 1500, 13500)
        db.session.rollback()
        db.session.remove()


def test_receivable_after_an_unfinished_reversal_charges_the_recipient_twice(world, stripe_api, client, monkeypatch):
    """The host refunds USD 30.00 after payout by reversing ama's transfer. Stripe
    reverses it, then the card refund fails (Stripe unreachable): the page says "Nothing
    was recorded; try again later". Stripe's ``transfer.reversed`` (the commons' own
    reversal) puts the 30.00 into the commons' funds. The host, told nothing happened,
    now refunds the funder from a receivable on ama instead: ama has lost 30.00 by
    reversal *and* owes 30.00, the commons keeps 30.00 of hers, and ``check()`` sees
    nothing. The reversal already made must be used (or the receivable refused)."""
    from marketplace.payments import stripe_client
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=9015)
    stripe_recipient(world, stripe_api, ama)
    payout = merged(world, 915, 10000, ama, 9015)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert payouts.transfer(share.id)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    world.session.commit()

    def unreachable(*a, **k):
        raise stripe_client.PaymentsUnavailable("connection refused")

    monkeypatch.setattr(stripe_client, "create_refund", unreachable)
    with pytest.raises(stripe_client.PaymentsUnavailable):
        after_payout.refund_after_payout(pledge.id, 3000, path="reversal", share_id=share.id, admin=world.admin)
    world.session.rollback()
    [transfer] = stripe_api.transfers.values()
    assert transfer["amount_reversed"] == 3000
    post_event(client, "transfer.reversed", dict(transfer), "evt_rev_915")
    world.session.expire_all()
    monkeypatch.setattr(stripe_client, "create_refund", lambda *a, **k: "re_915")
    try:
        after_payout.refund_after_payout(pledge.id, 3000, path="receivable", share_id=share.id, admin=world.admin)
    except payouts.PayoutError:
        pass  # refused: right as well
    assert balance(AccountKind.contributor_receivable, user_id=ama.id) == 0
    assert balance(AccountKind.commons_funds) in (0, 3000)  # the reversal is either used, or still waiting
    assert (transfer["amount_reversed"], balance(AccountKind.payouts_paid)) == (3000, 6000)


def test_funder_told_to_take_back_a_not_planned_items_pledge_is_refused_while_a_claim_is_approved(
        world, monkeypatch):
    """Ama's claim on a USD 100.00 item is approved; the item is then closed as not
    planned. The funder is e-mailed "You can take your pledge back now", but the
    self-service refund refuses: "A claim on this item is approved: someone is doing
    the work". Nobody will be paid for a not-planned item (no payout is proposed);
    the funder should get the 100.00 back when they ask."""
    from marketplace.payments import stripe_client

    sent = []
    monkeypatch.setattr("marketplace.notifications.mail.queue_mail", lambda to, subject, body, *a, **k: sent.append(subject))
    ama = world.implementor("ama@example.org", github_id=9016)
    item = world.issue(916)
    pledge = world.fund(item, 10000)
    world.claim(item, ama)
    _issue_event(world, item, state="closed", reason="not_planned", when="2030-01-01T00:00:00Z")
    assert "An item you funded was closed as not planned" in sent
    assert world.payouts_of(item) == []
    monkeypatch.setattr(stripe_client, "create_refund", lambda *a, **k: "re_916")
    world.session.expire_all()
    assert pledges.self_refund_refusal(world.session.get(Pledge, pledge.id)) is None
    assert pledges.self_service_refund(pledge.id, actor="funder")
    assert (world.session.get(Pledge, pledge.id).refunded_minor, escrow(item.id)) == (10000, 0)


# --- attacks that held ----------------------------------------------------------------------------

def test_dispute_won_after_execution_is_proposed_alone_and_nothing_is_paid_twice(world, client, monkeypatch):
    """A 100.00 and B 50.00 held; B disputed before approval, so the approval covers A
    only (10000 → 1000 + 9000). Execution proposes nothing for the disputed escrow;
    B's dispute is won: a follow-up pays
    exactly B (5000 → 500 + 4500), suggested to the person paid. The
    expiry cron leaves B alone while the follow-up is open; a second approval of the
    first payout, a replay of the won event and a second execution change nothing."""
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=9021)
    manual(world, ama)
    item = world.issue(921)
    a = world.fund(item, 10000)
    b = world.fund(item, 5000)
    world.claim(item, ama)
    post_event(client, "charge.dispute.created", _dispute(b, 5000, "needs_response", "dp_921"), "evt_921_1")
    world.pull(1921, "Fixes #921", author_id=9021, merged=True)
    [first] = world.payouts_of(item)
    world.approve(first, [(ama.id, 1)])
    assert (first.gross_minor, first.fee_minor, [c.pledge_id for c in first.covered]) == (10000, 1000, [a.id])
    assert payouts.execute(first.id, utcnow() + AFTER_WINDOW)
    # The escrow left is disputed: nothing can be paid from it, so nothing is proposed yet.
    assert len(world.payouts_of(item)) == 1
    for event_id in ("evt_921_2", "evt_921_2b"):
        post_event(client, "charge.dispute.closed", _dispute(b, 5000, "won", "dp_921"), event_id)
    world.session.expire_all()
    [first, follow_up] = world.payouts_of(item)
    assert (follow_up.state, follow_up.suggested_recipient_id) == (PayoutState.proposed, ama.id)
    b_row = world.session.get(Pledge, b.id)
    b_row.expires_at = utcnow() - timedelta(days=1)
    world.session.flush()
    assert pledges.refund_expired(utcnow()) == []
    with pytest.raises(payouts.PayoutError):
        world.approve(first, [(ama.id, 1)])
    world.approve(follow_up, [(ama.id, 1)])
    assert (follow_up.gross_minor, follow_up.fee_minor, follow_up.shares[0].amount_minor) == (5000, 500, 4500)
    assert payouts.execute(follow_up.id, utcnow() + AFTER_WINDOW)
    assert payouts.execute(follow_up.id, utcnow() + AFTER_WINDOW) is False
    assert (balance(AccountKind.contributor_payable, user_id=ama.id), balance(AccountKind.platform_fees),
            escrow(item.id)) == (13500, 1500, 0)
    assert check() == []


def test_expiry_never_refunds_money_of_an_open_payout_and_returns_a_cancelled_ones(world, monkeypatch):
    """Expired pledges of items with a proposed, approved or held payout stay; a
    cancelled payout's money goes back to its funder at expiry, in full, once."""
    from marketplace.payments import stripe_client

    monkeypatch.setattr(stripe_client, "create_refund", lambda pi, money, **k: f"re_{pi}")
    ama = world.implementor("ama@example.org", github_id=9022)
    manual(world, ama)
    proposed = merged(world, 922, 10000, ama, 9022)
    approved = merged(world, 923, 10000, ama, 9022)
    world.approve(approved, [(ama.id, 1)])
    held = merged(world, 924, 10000, ama, 9022)
    world.approve(held, [(ama.id, 1)])
    [held_pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == held.item_id)).all()
    held_pledge.rail = Rail.bank_transfer
    pledges.refund_through_rail(held_pledge.id, 1000, reason="admin", actor="t", offline_reference="B-924")
    held_pledge.rail = Rail.card
    assert payouts.execute(held.id, utcnow() + AFTER_WINDOW) is False and held.state is PayoutState.held
    cancelled = merged(world, 925, 10000, ama, 9022)
    payouts.cancel(cancelled.id, actor=world.maintainer, note="not this one")
    for pledge in world.session.scalars(select(Pledge)):
        pledge.expires_at = utcnow() - timedelta(days=1)
    world.session.flush()
    [refunded] = pledges.refund_expired(utcnow())
    assert world.session.get(Pledge, refunded).item_id == cancelled.item_id
    assert pledges.refund_expired(utcnow()) == []
    assert [escrow(p.item_id) for p in (proposed, approved, held, cancelled)] == [10000, 10000, 9000, 0]
    assert check() == []

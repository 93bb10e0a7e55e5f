"""A reviewer's attacks on the money paths of claims and payouts.

The tests named after a fault (e.g. ``..._is_never_paid_nor_refunded``) each
failed on the code as first reviewed and now guard its fix; the others prove
a property that held under attack. Amounts are USD cents with a
10% fee unless said otherwise (the ``world`` of tests/payouts/helpers.py).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.models import Claim, ClaimState
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutAccount, PayoutRail, PayoutShare, PayoutState, ShareState
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


# --- self-service refund once the work merged ------------------------------------------

def test_funder_self_service_refund_succeeds_after_the_claimants_pull_request_merged(world, monkeypatch):
    """The claim was approved, the claimant's PR merged, the payout is proposed:
    the funder must no longer take the money back by themselves."""
    ama = world.implementor("ama@example.org", github_id=8001)
    payout = merged(world, 401, 10000, ama, 8001)
    assert payout.state is PayoutState.proposed
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    from marketplace.payments import stripe_client

    monkeypatch.setattr(stripe_client, "create_refund", lambda *a, **k: "re_self_service")
    with pytest.raises(pledges.PledgeError):
        pledges.self_service_refund(pledge.id, actor="funder")
    assert world.session.get(Pledge, pledge.id).held_minor == 10000
    assert escrow(payout.item_id) == 10000


# --- refunds after payout ---------------------------------------------------------------

def test_receivable_refund_after_payout_larger_than_the_share_is_accepted(world):
    """Split 1% / 99% of USD 100.00: the 1% recipient got 0.90. A receivable of
    USD 50.00 on them records a debt fifty times what they received."""
    ama = world.implementor("ama@example.org", github_id=8011)
    kofi = world.implementor("kofi@example.org", github_id=8012)
    manual(world, ama)
    manual(world, kofi)
    payout = merged(world, 411, 10000, ama, 8011)
    world.approve(payout, [(ama.id, 100), (kofi.id, 9900)])
    assert [s.amount_minor for s in payout.shares] == [90, 8910]
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    small = payout.shares[0]
    payouts.record_manual_payout(small.id, reference="BANK-1", paid_on=utcnow().date(), admin=world.admin)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    pledge.rail = Rail.bank_transfer
    with pytest.raises(payouts.PayoutError):
        after_payout.refund_after_payout(pledge.id, 5000, path="receivable", share_id=small.id, admin=world.admin,
                                    offline_reference="BACK-1")
    assert balance(AccountKind.contributor_receivable, user_id=ama.id) == 0


def test_refund_after_payout_refuses_zero_negative_and_more_than_the_pledge(world):
    ama = world.implementor("ama@example.org", github_id=8013)
    manual(world, ama)
    payout = merged(world, 412, 10000, ama, 8013)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    payouts.record_manual_payout(share.id, reference="BANK-2", paid_on=utcnow().date(), admin=world.admin)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    pledge.rail = Rail.bank_transfer
    for amount in (0, -1, 10001):
        with pytest.raises(payouts.PayoutError):
            after_payout.refund_after_payout(pledge.id, amount, path="receivable", share_id=share.id,
                                        admin=world.admin, offline_reference=f"BACK-{amount}")
    with pytest.raises(payouts.PayoutError):
        after_payout.refund_after_payout(pledge.id, 100, path="reversal", share_id=share.id, admin=world.admin,
                                    offline_reference="BACK-X")
    with pytest.raises(payouts.PayoutError):
        after_payout.refund_after_payout(pledge.id, 100, path="sideways", share_id=share.id, admin=world.admin,
                                    offline_reference="BACK-Y")
    assert world.session.get(Pledge, pledge.id).refunded_minor == 0
    assert balance(AccountKind.refunds) == 0
    assert check() == []


# --- money arriving after approval -------------------------------------------------------

def test_pledge_received_after_approval_is_never_paid_nor_refunded(world, monkeypatch):
    """USD 100.00 held; a USD 50.00 bank transfer pledged before the merge is confirmed
    by the fiscal host after the approval, before execution. Execution pays exactly
    the approved 100.00 (right); the 50.00 must then be either proposed in a new
    payout or go back to its funder at expiry: it does neither, for ever (the item is
    solved, so the expiry job skips it, and nothing proposes it again)."""
    item = world.issue(421)
    world.fund(item, 10000)
    late = pledges.create(item, world.funder.id, Money(5000, "USD"), rail=Rail.card, actor="test")
    late.payment_intent_id = f"pi_late_{late.id}"
    ama = world.implementor("ama@example.org", github_id=8021)
    manual(world, ama)
    world.claim(item, ama)
    world.pull(1421, "Fixes #421", author_id=8021, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert pledges.mark_received(late.id, Money(5000, "USD"), actor="stripe")
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor) == (10000, 1000, 9000)
    assert escrow(item.id) == 5000
    assert world.session.get(Pledge, late.id).state is PledgeState.held
    assert check() == []
    # Past the late pledge's expiry, with nobody proposing to pay it.
    from marketplace.payments import stripe_client

    monkeypatch.setattr(stripe_client, "create_refund", lambda *a, **k: "re_late_expiry")
    late.expires_at = utcnow() - timedelta(days=1)
    world.session.flush()
    refunded = pledges.refund_expired(utcnow())
    reproposed = payouts.open_payout(item.id, "USD")
    assert late.id in refunded or (reproposed is not None and reproposed.gross_minor == 5000)


# --- claims ------------------------------------------------------------------------------

def test_submitted_claim_whose_pull_request_closed_unmerged_holds_the_item_forever(world):
    """Approved, then submitted by an open PR; the PR is closed without merging and the
    deadline passes: nothing of the claimant's closes the item any more, so the
    claim must lapse (and free the item) like an approved claim with no change."""
    item = world.issue(431)
    ama = world.implementor("ama@example.org", github_id=8031)
    claim = world.claim(item, ama)
    world.pull(1431, "Fixes #431", author_id=8031, merged=False, state="open")
    assert world.session.get(Claim, claim.id).state is ClaimState.submitted
    world.pull(1431, "Fixes #431", author_id=8031, merged=False, state="closed")
    lapsed = claims.lapse_due(utcnow() + timedelta(days=30))
    claim = world.session.get(Claim, claim.id)
    assert claim.id in lapsed
    assert (claim.state, claim.holding_item_id) == (ClaimState.lapsed, None)


def test_reassign_gives_a_claim_to_someone_already_at_the_active_claim_cap(world, app):
    """kofi holds 3 open claims (the cap). Reassigning ama's claim to kofi makes a 4th."""
    limit = app.config["CLAIM_ACTIVE_LIMIT"]
    kofi = world.implementor("kofi@example.org", github_id=8042)
    ama = world.implementor("ama@example.org", github_id=8041)
    deadline = utcnow().date() + timedelta(days=10)
    for n in range(limit):
        claims.request_claim(world.issue(440 + n), kofi, plan="p", estimate_days=2, deadline=deadline)
    assert claims.active_count(kofi.id) == limit
    claim = world.claim(world.issue(449), ama)
    with pytest.raises(claims.ClaimError):
        claims.reassign(claim, kofi, maintainer=world.maintainer)
    assert claims.active_count(kofi.id) == limit


def test_claim_attacks_that_held(world):
    item = world.issue(451)
    ama = world.implementor("ama@example.org", github_id=8051)
    kofi = world.implementor("kofi@example.org", github_id=8052)
    funder = world.funder
    deadline = utcnow().date() + timedelta(days=10)
    # Not an implementor; a firm that is not theirs; a deadline in the past or beyond a year.
    with pytest.raises(claims.ClaimError):
        claims.request_claim(item, funder, plan="p", estimate_days=2, deadline=deadline)
    from marketplace.accounts.models import Organisation, OrganisationMember

    firm = Organisation(name="Ama's firm", slug="amas-firm", kind="implementor", owner_id=ama.id)
    world.session.add(firm)
    world.session.flush()
    world.session.add_all([OrganisationMember(organisation_id=firm.id, user_id=ama.id, role="owner",
                                              accepted_at=utcnow()),
                           OrganisationMember(organisation_id=firm.id, user_id=kofi.id)])  # invited only
    world.session.flush()
    with pytest.raises(claims.ClaimError, match="members"):
        claims.request_claim(item, kofi, plan="p", estimate_days=2, deadline=deadline, organisation_id=firm.id)
    for bad in (utcnow().date() - timedelta(days=1), utcnow().date() + timedelta(days=400)):
        with pytest.raises(claims.ClaimError, match="deadline"):
            claims.request_claim(item, kofi, plan="p", estimate_days=2, deadline=bad)
    for days in (0, 366, -5):
        with pytest.raises(claims.ClaimError, match="estimate"):
            claims.request_claim(item, kofi, plan="p", estimate_days=days, deadline=deadline)
    claim = claims.request_claim(item, ama, plan="p", estimate_days=2, deadline=deadline)
    # Someone else withdrawing it; approving it once withdrawn; reassigning to a non-implementor.
    with pytest.raises(claims.ClaimError):
        claims.withdraw(claim, user=kofi)
    claims.approve(claim, maintainer=world.maintainer)
    with pytest.raises(claims.ClaimError, match="implementor"):
        claims.reassign(claim, funder, maintainer=world.maintainer)
    assert world.session.get(Claim, claim.id).state is ClaimState.approved
    # A reassignment is audited with both claims, and moves the hold on the item.
    from marketplace.audit.models import AuditEvent

    yaw = world.implementor("yaw@example.org", github_id=8053)
    moved = claims.reassign(world.session.get(Claim, claim.id), yaw, maintainer=world.maintainer, note="away")
    event = world.session.scalar(select(AuditEvent).where(AuditEvent.action == "claim.reassigned",
                                                          AuditEvent.object_id == str(claim.id)))
    assert event is not None and event.details["to_user"] == yaw.id and event.details["new_claim"] == moved.id
    assert (moved.state, moved.holding_item_id, world.session.get(Claim, claim.id).state) == (
        ClaimState.approved, item.id, ClaimState.rejected)
    claims.reassign(moved, ama, maintainer=world.maintainer)  # back to ama, for what follows
    claim = world.session.scalar(select(Claim).where(Claim.item_id == item.id, Claim.claimant_id == ama.id,
                                                     Claim.state == ClaimState.approved))
    claims.withdraw(claim, user=ama)
    with pytest.raises(claims.ClaimError):
        claims.approve(world.session.get(Claim, claim.id), maintainer=world.maintainer)
    with pytest.raises(claims.ClaimError):
        claims.reassign(world.session.get(Claim, claim.id), kofi, maintainer=world.maintainer)
    # A submitted claim lapses never while its change is open.
    other = world.claim(world.issue(452), kofi)
    world.pull(1452, "Fixes #452", author_id=8052, merged=False, state="open")
    assert claims.lapse_due(utcnow() + timedelta(days=40)) == []
    assert world.session.get(Claim, other.id).state is ClaimState.submitted


# --- proposals from the forge ---------------------------------------------------------------

def test_login_match_with_another_numeric_id_is_not_the_claimant(world):
    item = world.issue(461)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8061)
    claim = world.claim(item, ama)
    from tests.webhooks.helpers import payload, post_github

    data = payload("github/webhooks/pull_request/closed.unmerged.json")
    pr = data["pull_request"]
    pr.update(number=1461, id=881461, body="Fixes #461", merged=True, state="closed",
              merged_at="2019-05-15T15:20:40Z", html_url="https://github.com/Codertocat/Hello-World/pull/1461")
    pr["user"].update(id=99999461, login="ama")  # her login, someone else's account
    assert post_github(world.client, "pull_request", data).status_code == 202
    [payout] = world.payouts_of(item)
    assert (payout.suggested_recipient_id, payout.shares) == (None, [])
    assert world.session.get(Claim, claim.id).state is ClaimState.approved


def test_pull_request_from_a_fork_pays_its_author_by_forge_id_and_a_deleted_author_nobody(world):
    from marketplace.backlog.models import PullRequest
    from tests.webhooks.helpers import payload, post_github

    def fork_pull(number, issue, author):
        data = payload("github/webhooks/pull_request/closed.unmerged.json")
        pr = data["pull_request"]
        pr.update(number=number, id=880000 + number, body=f"Fixes #{issue}", merged=True, state="closed",
                  merged_at="2019-05-15T15:20:40Z", html_url=f"https://github.com/Codertocat/Hello-World/pull/{number}")
        pr["head"]["repo"] = dict(pr["head"]["repo"], full_name="ama/Hello-World", id=424242)
        pr["user"] = author
        assert post_github(world.client, "pull_request", data).status_code == 202

    first, second = world.issue(464), world.issue(465)
    world.fund(first, 10000)
    world.fund(second, 10000)
    ama = world.implementor("ama@example.org", github_id=8064)
    world.claim(first, ama)
    world.claim(second, world.implementor("kofi@example.org", github_id=8065))
    fork_pull(1465, 464, {"id": 8064, "login": "ama-renamed", "type": "User"})
    assert world.session.scalar(select(PullRequest).where(PullRequest.number == 1465)).head_repository \
        == "ama/Hello-World"
    [payout] = world.payouts_of(first)
    assert (payout.suggested_recipient_id, [s.amount_minor for s in payout.shares]) == (ama.id, [9000])
    fork_pull(1466, 465, None)  # the author's account was deleted ("ghost")
    [payout] = world.payouts_of(second)
    assert (payout.suggested_recipient_id, payout.shares) == (None, [])


def test_closed_completed_first_then_the_claimants_merge_points_the_proposal_at_her(world):
    from tests.webhooks.helpers import payload, post_github

    item = world.issue(462)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8062)
    claim = world.claim(item, ama)
    body = payload("github/webhooks/issues/closed.json")
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["issue"].update(number=462, id=item.forge_id, state="closed", state_reason="completed",
                         updated_at="2030-01-01T00:00:00Z", closed_at="2030-01-01T00:00:00Z", html_url=item.html_url)
    assert post_github(world.client, "issues", body).status_code == 202
    [payout] = world.payouts_of(item)
    assert (payout.reason, payout.suggested_recipient_id) == ("closed_completed", None)
    for _ in range(2):  # the merged event twice
        world.pull(1462, "Fixes #462", author_id=8062, merged=True)
    [payout] = world.payouts_of(item)
    assert (payout.reason, payout.suggested_recipient_id, payout.pull_request.number) == ("merged", ama.id, 1462)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(ama.id, 9000)]
    assert world.session.get(Claim, claim.id).state is ClaimState.completed


def test_proposal_keeps_pointing_at_an_unlinked_pull_request_after_the_claimants_merge(world):
    """A stranger's PR wrongly "Fixes #463" and merges: a proposal without recipient.
    The maintainer removes that link; then the approved claimant's PR merges. The open
    proposal should now be the claimant's (her PR, her as suggested recipient, her
    claim completed)."""
    from marketplace.backlog.models import ItemLink, PullRequest
    from marketplace.backlog.service import unlink_by_hand

    item = world.issue(463)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8063)
    claim = world.claim(item, ama)
    world.pull(1463, "Fixes #463", author_id=77777, merged=True)
    [payout] = world.payouts_of(item)
    assert payout.suggested_recipient_id is None
    stranger = world.session.scalar(select(PullRequest).where(PullRequest.number == 1463))
    [link] = world.session.scalars(select(ItemLink).where(ItemLink.pull_request_id == stranger.id)).all()
    unlink_by_hand(link, actor="user:maintainer")
    assert world.session.get(BacklogItem, item.id).solved_by_id is None
    world.pull(1464, "Fixes #463", author_id=8063, merged=True)
    [payout] = [p for p in world.payouts_of(item) if p.state is not PayoutState.cancelled]
    assert (payout.pull_request.number, payout.suggested_recipient_id) == (1464, ama.id)
    assert world.session.get(Claim, claim.id).state is ClaimState.completed


# --- disputes -------------------------------------------------------------------------------

def _dispute(pledge, amount, status, dispute_id="dp_1"):
    return {"id": dispute_id, "object": "dispute", "amount": amount, "currency": "usd",
            "payment_intent": pledge.payment_intent_id, "status": status}


def test_partial_dispute_lost_leaves_the_rest_of_the_pledge_disputed_forever(world, client):
    """USD 50.00 pledged; a chargeback of 20.00 opens and is lost. The dispute is
    over: the 30.00 left must be an ordinary held (partially refunded) pledge that a
    payout can take (gross 3000, fee 300, share 2700)."""
    from tests.payments.test_stripe_events import post_event

    item = world.issue(471)
    pledge = world.fund(item, 5000)
    ama = world.implementor("ama@example.org", github_id=8071)
    world.claim(item, ama)
    post_event(client, "charge.dispute.created", _dispute(pledge, 2000, "needs_response"), "evt_pd_1")
    post_event(client, "charge.dispute.closed", _dispute(pledge, 2000, "lost"), "evt_pd_2")
    world.session.expire_all()
    pledge = world.session.get(Pledge, pledge.id)
    assert (pledge.refunded_minor, balance(AccountKind.disputes), escrow(item.id)) == (2000, 2000, 3000)
    assert pledge.state is PledgeState.partially_refunded
    world.pull(1471, "Fixes #471", author_id=8071, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor) == (3000, 300, 2700)


def test_dispute_ordering_attacks_that_held(world, client):
    """Disputed during the window then won: executes in full. Disputed after execution
    (opened, won or lost, replayed): the payout is untouched; a loss is the disputed amount once."""
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=8072)
    manual(world, ama)
    payout = merged(world, 472, 10000, ama, 8072)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    world.approve(payout, [(ama.id, 1)])
    post_event(client, "charge.dispute.created", _dispute(pledge, 10000, "needs_response", "dp_a"), "evt_o_1")
    world.session.expire_all()
    assert world.session.get(Payout, payout.id).state is PayoutState.held
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW) is False
    post_event(client, "charge.dispute.closed", _dispute(pledge, 10000, "won", "dp_a"), "evt_o_2")
    post_event(client, "charge.dispute.closed", _dispute(pledge, 10000, "won", "dp_a"), "evt_o_2b")
    world.session.expire_all()
    payout = world.session.get(Payout, payout.id)
    assert payout.state is PayoutState.approved
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert (balance(AccountKind.platform_fees), balance(AccountKind.contributor_payable, user_id=ama.id)) == (1000, 9000)
    # After execution: a new dispute opens, is won, then another is lost (twice delivered).
    post_event(client, "charge.dispute.created", _dispute(pledge, 10000, "needs_response", "dp_b"), "evt_o_3")
    post_event(client, "charge.dispute.closed", _dispute(pledge, 10000, "won", "dp_b"), "evt_o_4")
    world.session.expire_all()
    assert world.session.get(Pledge, pledge.id).state is PledgeState.released
    assert balance(AccountKind.disputes) == 0
    for event_id in ("evt_o_5", "evt_o_5b", "evt_o_6"):
        post_event(client, "charge.dispute.closed", _dispute(pledge, 4000, "lost", "dp_c"), event_id)
    world.session.expire_all()
    assert (balance(AccountKind.disputes), balance(AccountKind.commons_funds)) == (4000, -4000)
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000
    assert world.session.get(Payout, payout.id).state is PayoutState.executing
    assert check() == []


# --- rails ------------------------------------------------------------------------------------

def test_three_decimal_currency_share_crashes_the_payout_cron(world, app):
    """KWD (3 decimals; Stripe takes only amounts ending in 0): 10.010 KWD pledged,
    10% fee 1.001, share 9.009. Its transfer raises MoneyError out of transfer() and
    retry_due(), so the cron's transaction never commits: every other due payout
    (here a USD one) stays unexecuted for as long as that share exists."""
    ama = world.implementor("ama@example.org", github_id=8081)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.stripe, stripe_account_id="acct_kwd",
                                    transfers_active=True))
    item = world.issue(481)
    world.fund(item, 10010, "KWD")
    world.claim(item, ama)
    world.pull(1481, "Fixes #481", author_id=8081, merged=True)
    [kwd] = world.payouts_of(item)
    world.approve(kwd, [(ama.id, 1)])
    assert (kwd.gross_minor, kwd.fee_minor, kwd.shares[0].amount_minor) == (10010, 1001, 9009)
    assert payouts.execute(kwd.id, utcnow() + AFTER_WINDOW)
    kofi = world.implementor("kofi@example.org", github_id=8082)
    manual(world, kofi)
    usd = merged(world, 482, 10000, kofi, 8082)
    world.approve(usd, [(kofi.id, 1)])
    done = payouts.retry_due(utcnow() + AFTER_WINDOW)
    assert usd.id in done["executed"]
    assert world.session.get(Payout, usd.id).state is PayoutState.executing


def test_two_currencies_on_one_item_pay_separately_and_exactly(world):
    ama = world.implementor("ama@example.org", github_id=8083)
    manual(world, ama)
    item = world.issue(483)
    world.fund(item, 10001, "USD")
    world.fund(item, 3333, "EUR")
    world.claim(item, ama)
    world.pull(1483, "Fixes #483", author_id=8083, merged=True)
    got = {}
    for payout in world.payouts_of(item):
        world.approve(payout, [(ama.id, 1)])
        assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
        got[payout.currency] = (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor)
    # 10% of 100.01 = 10.001 → 10.00; of 33.33 = 3.333 → 3.33.
    assert got == {"USD": (10001, 1000, 9001), "EUR": (3333, 333, 3000)}
    payable = ledger.account(AccountKind.contributor_payable, user_id=ama.id)
    assert (ledger.balance(payable, "USD"), ledger.balance(payable, "EUR")) == (9001, 3000)
    assert check() == []


def test_shares_of_zero_and_a_cent_split_exactly(world):
    ama = world.implementor("ama@example.org", github_id=8084)
    kofi = world.implementor("kofi@example.org", github_id=8085)
    yaw = world.implementor("yaw@example.org", github_id=8086)
    for person in (ama, kofi, yaw):
        manual(world, person)
    payout = merged(world, 484, 2, ama, 8084)
    world.approve(payout, [(ama.id, 1), (kofi.id, 1), (yaw.id, 1)])
    assert (payout.fee_minor, [s.amount_minor for s in payout.shares]) == (0, [1, 1, 0])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert [balance(AccountKind.contributor_payable, user_id=p.id) for p in (ama, kofi, yaw)] == [1, 1, 0]
    assert check() == []
    with pytest.raises(payouts.PayoutError):
        world.approve(payout, [(ama.id, 1)])


def test_approval_refuses_bad_recipients_and_weights(world):
    ama = world.implementor("ama@example.org", github_id=8087)
    uncertified = world.implementor("yaw@example.org", github_id=8088, certified=False)
    elsewhere = world.implementor("efua@example.org", github_id=8090, certified=False)
    from marketplace.projects.models import MemberProject

    other = world.session.scalar(select(MemberProject).where(MemberProject.id != world.project.id))
    certification.grant(elsewhere, issuer=world.admin, project_id=other.id, note="another project")
    payout = merged(world, 487, 10000, ama, 8087)
    for recipients in ([], [(world.funder.id, 1)], [(world.maintainer.id, 1)], [(ama.id, 0)], [(ama.id, -5)],
                       [(ama.id, 1), (ama.id, 1)], [(uncertified.id, 1)], [(elsewhere.id, 1)], [(10**9, 1)],
                       [(ama.id, 1.5)]):
        with pytest.raises(payouts.PayoutError):
            world.approve(payout, recipients)
    assert world.session.get(Payout, payout.id).state is PayoutState.proposed


def test_admin_refund_between_approval_and_execution_holds_then_pays_only_what_is_left(world):
    ama = world.implementor("ama@example.org", github_id=8089)
    manual(world, ama)
    payout = merged(world, 489, 10000, ama, 8089)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    pledge.rail = Rail.bank_transfer
    world.approve(payout, [(ama.id, 1)])
    assert pledges.refund_through_rail(pledge.id, 2500, reason="admin", actor="user:admin",
                                       offline_reference="BACK-489")
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW) is False
    assert payout.state is PayoutState.held and escrow(payout.item_id) == 7500
    world.approve(payout, [(ama.id, 1)])
    assert (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor) == (7500, 750, 6750)
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert (escrow(payout.item_id), balance(AccountKind.refunds)) == (0, 2500)
    assert check() == []


# --- Stripe: reversals and account events ------------------------------------------------------

@pytest.fixture
def stripe_api(app):
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    saved = {k: app.config.get(k) for k in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_TIMEOUT_SECONDS")}
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url, STRIPE_TIMEOUT_SECONDS=2)
    yield server
    app.config.update(saved)
    server.stop()


def paid_by_stripe(world, stripe_api, number, amount, user, github_id):
    """A payout of ``amount`` to ``user`` executed and transferred through the local Stripe."""
    from marketplace.payments import stripe_client

    account_id = stripe_client.create_connected_account(user.id, country="KE", email=user.email)
    stripe_api.activate(account_id)
    world.session.add(PayoutAccount(user_id=user.id, rail=PayoutRail.stripe, stripe_account_id=account_id,
                                    transfers_active=True))
    world.session.flush()
    payout = merged(world, number, amount, user, github_id)
    world.approve(payout, [(user.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert payouts.transfer(share.id) and share.state is ShareState.paid
    return payout, share


def test_refund_after_payout_cannot_be_finished_once_its_own_reversal_was_reported(world, stripe_api, client,
                                                                                  monkeypatch):
    """The admin refunds 30.00 after payout by reversal. Stripe reverses the transfer,
    then the refund call fails (Stripe unreachable): the request rolls back. Stripe's
    transfer.reversed for that reversal arrives; the handler takes it for a reversal
    made "outside the commons", marks the share reversed and keeps the 30.00 in the
    commons' funds. The admin's retry (same reversal, same key) is then refused: the
    funder can never be refunded and the ledger keeps 30.00 that belongs to them."""
    from marketplace.payments import stripe_client
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=8091)
    payout, share = paid_by_stripe(world, stripe_api, 491, 10000, ama, 8091)
    [pledge] = world.session.scalars(select(Pledge).where(Pledge.item_id == payout.item_id)).all()
    real_refund = stripe_client.create_refund

    def unreachable(*args, **kwargs):
        raise stripe_client.PaymentsUnavailable("Stripe timed out")

    monkeypatch.setattr(stripe_client, "create_refund", unreachable)
    with pytest.raises(stripe_client.PaymentsUnavailable):
        with world.session.begin_nested():  # what the admin view's rollback does
            after_payout.refund_after_payout(pledge.id, 3000, path="reversal", share_id=share.id, admin=world.admin)
    transfer_obj = stripe_api.transfers[share.stripe_transfer_id]
    assert transfer_obj["amount_reversed"] == 3000
    post_event(client, "transfer.reversed", transfer_obj, "evt_own_reversal")
    monkeypatch.setattr(stripe_client, "create_refund", real_refund)
    world.session.expire_all()
    after_payout.refund_after_payout(pledge.id, 3000, path="reversal", share_id=share.id, admin=world.admin)
    assert stripe_api.transfers[share.stripe_transfer_id]["amount_reversed"] == 3000
    assert world.session.get(Pledge, pledge.id).refunded_minor == 3000
    assert (balance(AccountKind.refunds), balance(AccountKind.payouts_paid), balance(AccountKind.commons_funds)) \
        == (3000, 6000, 0)
    assert check() == []


def test_reversals_made_outside_the_commons_count_once_however_often_reported(world, stripe_api, client):
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=8092)
    payout, share = paid_by_stripe(world, stripe_api, 492, 10000, ama, 8092)
    stripe_api.create_reversal(share.stripe_transfer_id, {"amount": "1000"})
    for event_id in ("evt_rev_a", "evt_rev_a", "evt_rev_b"):
        post_event(client, "transfer.reversed", stripe_api.transfers[share.stripe_transfer_id], event_id)
    stripe_api.create_reversal(share.stripe_transfer_id, {"amount": "500"})
    post_event(client, "transfer.reversed", stripe_api.transfers[share.stripe_transfer_id], "evt_rev_c")
    post_event(client, "transfer.reversed", stripe_api.transfers[share.stripe_transfer_id], "evt_rev_d")
    world.session.expire_all()
    assert (balance(AccountKind.payouts_paid), balance(AccountKind.commons_funds)) == (7500, 1500)
    share = world.session.get(PayoutShare, share.id)
    assert share.state is ShareState.reversed and world.session.get(Payout, payout.id).flagged_at is not None
    # A reversal in another currency or for an unknown transfer changes nothing.
    post_event(client, "transfer.reversed", {"id": "tr_unknown", "object": "transfer", "reversals": {
        "data": [{"id": "trr_x", "amount": 999, "currency": "usd"}]}}, "evt_rev_e")
    world.session.expire_all()
    assert balance(AccountKind.commons_funds) == 1500
    assert check() == []


def test_account_updated_for_an_unknown_or_another_persons_account_releases_nothing(world, stripe_api, client):
    from marketplace.payments import stripe_client
    from tests.payments.test_stripe_events import post_event

    ama = world.implementor("ama@example.org", github_id=8093)
    kofi = world.implementor("kofi@example.org", github_id=8094)
    ama_acct = stripe_client.create_connected_account(ama.id, country="KE", email=ama.email)
    kofi_acct = stripe_client.create_connected_account(kofi.id, country="KE", email=kofi.email)
    for user, acct in ((ama, ama_acct), (kofi, kofi_acct)):
        world.session.add(PayoutAccount(user_id=user.id, rail=PayoutRail.stripe, stripe_account_id=acct,
                                        transfers_active=False))
    world.session.flush()
    payout = merged(world, 493, 10000, ama, 8093)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert share.state is ShareState.awaiting_account
    post_event(client, "account.updated", dict(stripe_api.activate(kofi_acct)), "evt_kofi")
    unknown = dict(stripe_api.activate(kofi_acct), id="acct_nobody")
    post_event(client, "account.updated", unknown, "evt_nobody")
    world.session.expire_all()
    assert world.session.get(PayoutShare, share.id).state is ShareState.awaiting_account
    assert stripe_api.transfers == {}
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000
    assert check() == []


# --- the pages: authorisation, CSRF, bad input --------------------------------------------------

@pytest.fixture
def scene(app, session):
    from tests.payouts.test_payout_views import Scene

    return Scene(app, session)


def _post(client, url, /, **data):
    from tests.payouts.test_payout_views import post

    return post(client, url, **data)


def test_approve_and_cancel_by_anyone_but_a_maintainer_change_nothing(scene, app):
    from marketplace.projects.models import MemberProject, ProjectMaintainer
    from tests.accounts.helpers import person

    url = f"/payouts/{scene.payout.id}"
    data = scene.split(approve="Approve", seen_gross="10000")
    other = person(scene.session, "other-keeper@example.org")
    elsewhere = scene.session.scalar(select(MemberProject).where(MemberProject.slug != "odk"))
    scene.session.add(ProjectMaintainer(project_id=elsewhere.id, user_id=other.id, granted_by="test"))
    scene.session.commit()
    for who in (scene.ama, scene.funder, other):
        c = scene.client(who)
        assert _post(c, f"{url}/approve", **data).status_code == 403
        assert _post(c, f"{url}/cancel", **{"cancel-note": "mine now"}).status_code == 403
    anonymous = app.test_client()
    assert anonymous.post(f"{url}/approve", data=data).status_code in (303, 400)
    # The maintainer, without the CSRF token (a forged cross-site form).
    keeper = scene.client(scene.maintainer)
    assert keeper.post(f"{url}/approve", data=data).status_code == 400
    assert keeper.post(f"{url}/cancel", data={"cancel-note": "forged"}).status_code == 400
    payout = scene.session.get(Payout, scene.payout.id)
    scene.session.refresh(payout)
    assert (payout.state, payout.approved_by_id) == (PayoutState.proposed, None)


@pytest.mark.parametrize("extra, status", [
    ({"rows-0-percent": "abc"}, 400),
    ({"rows-0-percent": "1e400"}, 400),
    ({"rows-0-percent": "NaN", "rows-1-percent": "NaN"}, 400),
    ({"rows-0-percent": "70.001", "rows-1-percent": "29.999"}, 400),
    ({"rows-0-percent": "110", "rows-1-percent": "-10"}, 400),
    ({"rows-0-recipient": "99999999999999999999999"}, 400),
    ({"rows-0-recipient": "-1"}, 400),
    ({"seen_gross": "99999999999999999999999999"}, 400),
    ({"seen_gross": "10001"}, 409),
    ({"seen_gross": "１００００"}, 400),  # full-width digits
    ({"seen_gross": ""}, 400),
])
def test_bad_approval_input_approves_nothing_and_says_why(scene, extra, status):
    keeper = scene.client(scene.maintainer)
    response = _post(keeper, f"/payouts/{scene.payout.id}/approve",
                     **{**scene.split(approve="Approve", seen_gross="10000"), **extra})
    # Issue 20: a refusal answers 303 to the payout page (a reload posts nothing), which shows why.
    assert response.status_code == 303
    page = keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert "nothing was approved" in page or (status == 409 and "The escrow changed" in page) or \
        "Percentages must" in page or "no implementor" in page
    payout = scene.session.get(Payout, scene.payout.id)
    scene.session.refresh(payout)
    assert payout.state is PayoutState.proposed


def test_manual_payout_page_is_admin_only_and_refuses_bad_dates_and_details_stay_private(scene, app, monkeypatch):
    from marketplace.accounts.models import ImplementorProfile

    monkeypatch.setitem(app.config, "PAYOUT_MANUAL_COUNTRIES", ["KE"])
    scene.session.add(ImplementorProfile(user_id=scene.ama.id, country="KE", public_earnings=True))
    scene.session.add(PayoutAccount(user_id=scene.ama.id, rail=PayoutRail.manual,
                                    manual_details="M-Pesa 0700 SECRET"))
    scene.session.commit()
    keeper = scene.client(scene.maintainer)
    _post(keeper, f"/payouts/{scene.payout.id}/approve", **scene.split(approve="Approve", seen_gross="10000"))
    assert payouts.execute(scene.payout.id, utcnow() + AFTER_WINDOW)
    scene.session.commit()
    share = scene.session.get(Payout, scene.payout.id).shares[0]
    assert share.state is ShareState.awaiting_manual_payout
    url = f"/admin/payouts/shares/{share.id}/paid"
    today = utcnow().date()
    for who in (scene.ama, scene.kofi, scene.maintainer, scene.funder):
        c = scene.client(who)
        assert _post(c, url, reference="SELF", paid_on=today.isoformat()).status_code == 403
        for path in ("/account/payouts", f"/people/{scene.ama.id}", f"/payouts/{scene.payout.id}"):
            if who is scene.ama and path == "/account/payouts":
                continue
            assert "SECRET" not in c.get(path).get_data(as_text=True)
    host = scene.client(scene.admin)
    for form in ({"reference": "R", "paid_on": (today + timedelta(days=1)).isoformat()},
                 {"reference": "R", "paid_on": "2026-13-45"}, {"reference": "   ", "paid_on": today.isoformat()}):
        assert _post(host, url, **form).status_code == 303
    # A reference longer than the 200 characters kept is a field error: the page again, what was typed kept.
    too_long = _post(host, url, reference="R" * 201, paid_on=today.isoformat())
    assert too_long.status_code == 400 and 'value="' + "R" * 201 + '"' in too_long.get_data(as_text=True)
    scene.session.refresh(share)
    assert share.state is ShareState.awaiting_manual_payout and balance(AccountKind.payouts_paid) == 0
    assert _post(host, url, reference="MPESA-1", paid_on=today.isoformat()).status_code == 303
    scene.session.refresh(share)
    assert (share.state, balance(AccountKind.payouts_paid)) == (ShareState.paid, 6300)
    # Refund after payout: only an admin, and bad input refunds nothing.
    refund_url = f"/admin/pledges/{scene.pledge.id}/refund-after-payout"
    good = {"amount": "10.00", "share_id": str(share.id), "path": "receivable", "reference": "BACK-1",
            "seen_refunded": "0"}
    for who in (scene.ama, scene.maintainer, scene.funder):
        assert _post(scene.client(who), refund_url, **good).status_code == 403
    for bad in ({"amount": "-10.00"}, {"amount": "0"}, {"amount": "99999999999999999999"}, {"amount": "1e3"},
                {"amount": "10.001"}, {"amount": "100.01"}, {"seen_refunded": "5"}, {"seen_refunded": ""},
                {"share_id": "abc"}, {"share_id": "99999999999"}, {"path": "gift"}, {"reference": ""}):
        assert _post(host, refund_url, **{**good, **bad}).status_code == 303
    assert scene.session.get(Pledge, scene.pledge.id).refunded_minor == 0
    assert balance(AccountKind.refunds) == 0
    assert check() == []


def test_claim_pages_refuse_another_persons_withdrawal_and_a_non_maintainers_decision(scene):
    from marketplace.claims import service as claim_service

    claim = claim_service.request_claim(scene.item, scene.ama, plan="p", estimate_days=3,
                                        deadline=utcnow().date() + timedelta(days=5))
    scene.session.commit()
    kofi = scene.client(scene.kofi)
    from tests.claims.test_claim_views import post as claim_post

    assert claim_post(kofi, f"/claims/{claim.id}/withdraw").status_code == 403
    assert claim_post(kofi, f"/claims/{claim.id}/approve").status_code == 403
    assert claim_post(kofi, f"/claims/{claim.id}/reject").status_code == 403
    assert claim_post(kofi, f"/claims/{claim.id}/reassign", **{"reassign-email": "kofi@example.org"}).status_code \
        == 403
    ama = scene.client(scene.ama)
    assert ama.post(f"/claims/{claim.id}/withdraw").status_code == 400  # no CSRF token
    scene.session.refresh(claim)
    assert claim.state is ClaimState.requested
    # The other new forms without their token: payout details, a project certification.
    assert ama.post("/account/payouts", data={"form": "manual", "manual-details": "IBAN forged"}).status_code == 400
    assert scene.session.get(PayoutAccount, scene.ama.id) is None
    keeper = scene.client(scene.maintainer)
    expires = (utcnow().date() + timedelta(days=30)).isoformat()
    assert keeper.post("/projects/odk/certifications", data={"cert-email": "kofi@example.org",
                                                             "cert-expires_on": expires}).status_code == 400
    from marketplace.claims.models import Certification

    assert scene.session.scalar(select(Certification).where(Certification.user_id == scene.kofi.id,
                                                            Certification.project_id.is_not(None))) is None


# --- real races: two sessions on their own PostgreSQL database -----------------------------------

@pytest.fixture(scope="module")
def race_app(database_url):
    """An app on its own database (built by the migrations); both sessions commit for real."""
    from sqlalchemy import make_url

    from tests.races import race_database_app

    with race_database_app(database_url, f"{make_url(database_url).database}_payout_service_race") as app:
        yield app


def _race_world(tag: str, items: int = 1):
    """A project with a 10% fee, ``items`` open items, a maintainer, an admin and a certified implementor."""
    from marketplace.accounts.models import User
    from marketplace.backlog.models import ItemState
    from marketplace.extensions import db
    from marketplace.forges.models import ForgeKind, Repository
    from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus

    now = utcnow()
    project = MemberProject(slug=f"race-{tag}", name=f"Race {tag}", registry_status=RegistryStatus.active,
                            fee_rate_bps=1000, admitted_at=now)
    repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="race", name=tag,
                      path_key=f"race/{tag}", url=f"https://github.com/race/{tag}")
    rows = [BacklogItem(repository=repo, forge_host="github.com", forge_id=hash(tag) % 10**9 * 100 + n, number=n,
                        title=f"Race {tag} {n}", state=ItemState.open,
                        html_url=f"https://github.com/race/{tag}/issues/{n}", forge_created_at=now,
                        forge_updated_at=now) for n in range(1, items + 1)]
    people = {}
    for role, admin, implementor in (("keeper", False, False), ("admin", True, False), ("funder", False, False),
                                     ("ama", False, True)):
        user = User(display_name=f"{role}-{tag}", is_admin=admin, is_implementor=implementor, email_verified_at=now)
        user.set_email(f"{role}-{tag}@example.org")
        people[role] = user
    db.session.add_all([project, repo, *rows, *people.values()])
    db.session.flush()
    db.session.add(ProjectMaintainer(project_id=project.id, user_id=people["keeper"].id, granted_by="test"))
    certification.grant(people["ama"], issuer=people["admin"], project_id=None)
    db.session.flush()
    return rows, people


def _run_together(app, *calls):
    """Run each call (a function of no argument, in its own app context and session) at once; their outcomes."""
    import threading

    from marketplace.extensions import db

    outcomes = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call):
        with app.app_context():
            try:
                barrier.wait()
                outcomes[i] = ("ok", call())
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - the outcome is what we look at
                db.session.rollback()
                outcomes[i] = ("refused", f"{type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.postgres
def test_manual_payout_recorded_twice_at_once_pays_once(race_app, monkeypatch):
    import time as _time

    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.notifications import notices

    with race_app.app_context():
        [item], people = _race_world("manual")
        item.state = ItemState.closed
        db.session.add(PayoutAccount(user_id=people["ama"].id, rail=PayoutRail.manual, manual_details="bank"))
        pledge = pledges.create(item, people["funder"].id, Money(10000, "USD"), rail=Rail.bank_transfer, actor="t")
        pledges.mark_received(pledge.id, Money(10000, "USD"), actor="t")
        [payout] = payouts.propose(item, reason="closed_completed")
        payouts.approve(payout.id, maintainer=people["keeper"], recipients=[(people["ama"].id, 1)])
        assert payouts.execute(payout.id, utcnow() + timedelta(seconds=1))
        share_id, admin_id, ama_id = payout.shares[0].id, people["admin"].id, people["ama"].id
        db.session.commit()
        db.session.remove()
    real = notices.share_event
    monkeypatch.setattr(notices, "share_event", lambda *a: (_time.sleep(0.4), real(*a)))

    def record(reference):
        return lambda: payouts.record_manual_payout(share_id, reference=reference, paid_on=utcnow().date(),
                                                    admin=db.session.get(User, admin_id))

    outcomes = _run_together(race_app, record("BANK-A"), record("BANK-B"))
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    with race_app.app_context():
        paid = ledger.balance(ledger.account(AccountKind.payouts_paid), "USD")
        payable = ledger.balance(ledger.account(AccountKind.contributor_payable, user_id=ama_id), "USD")
        assert (paid, payable) == (9000, 0)
        assert check() == []
        db.session.remove()


@pytest.mark.postgres
def test_concurrent_claim_requests_cannot_pass_the_cap(race_app, monkeypatch):
    import time as _time

    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.notifications import notices

    limit = race_app.config["CLAIM_ACTIVE_LIMIT"]
    with race_app.app_context():
        rows, people = _race_world("cap", items=limit + 2)
        deadline = utcnow().date() + timedelta(days=5)
        for item in rows[:limit - 1]:
            claims.request_claim(item, people["ama"], plan="p", estimate_days=2, deadline=deadline)
        ama_id, spare = people["ama"].id, [item.id for item in rows[limit - 1:]]
        db.session.commit()
        db.session.remove()
    real = notices.claim_event
    monkeypatch.setattr(notices, "claim_event", lambda *a: (_time.sleep(0.4), real(*a)))

    def ask(item_id):
        return lambda: claims.request_claim(db.session.get(BacklogItem, item_id), db.session.get(User, ama_id),
                                            plan="p", estimate_days=2, deadline=deadline).id

    outcomes = _run_together(race_app, *(ask(i) for i in spare))
    assert sorted(o[0] for o in outcomes) == ["ok"] + ["refused"] * (len(spare) - 1)
    with race_app.app_context():
        assert claims.active_count(ama_id) == limit
        db.session.remove()


@pytest.mark.postgres
def test_self_service_refund_racing_the_approval_cannot_both_pass(race_app, monkeypatch):
    import time as _time

    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.notifications import notices
    from marketplace.payments import stripe_client

    with race_app.app_context():
        [item], people = _race_world("refund-race")
        item.state = ItemState.closed
        db.session.add(PayoutAccount(user_id=people["ama"].id, rail=PayoutRail.manual, manual_details="bank"))
        pledge = pledges.create(item, people["funder"].id, Money(10000, "USD"), rail=Rail.card, actor="t")
        pledge.payment_intent_id = "pi_refund_race"
        pledges.mark_received(pledge.id, Money(10000, "USD"), actor="t")
        [payout] = payouts.propose(item, reason="closed_completed")
        payout_id, pledge_id, keeper_id, ama_id = payout.id, pledge.id, people["keeper"].id, people["ama"].id
        db.session.commit()
        db.session.remove()
    monkeypatch.setattr(stripe_client, "create_refund", lambda *a, **k: "re_race")
    real = notices.payout_event
    monkeypatch.setattr(notices, "payout_event", lambda *a: (_time.sleep(0.5), real(*a)))  # approval holds its locks

    def approve():
        return payouts.approve(payout_id, maintainer=db.session.get(User, keeper_id), recipients=[(ama_id, 1)]).id

    def refund():
        _time.sleep(0.1)
        return pledges.self_service_refund(pledge_id, actor="funder")

    outcomes = _run_together(race_app, approve, refund)
    assert [o[0] for o in outcomes] == ["ok", "refused"], outcomes
    assert "payout is under way" in outcomes[1][1]
    with race_app.app_context():
        pledge = db.session.get(Pledge, pledge_id)
        assert (pledge.refunded_minor, pledge.state) == (0, PledgeState.released)  # executed (no window)
        assert ledger.balance(ledger.account(AccountKind.contributor_payable, user_id=ama_id), "USD") == 9000
        assert check() == []
        db.session.remove()


# --- closing, reopening, certification ----------------------------------------------------------

def _close_issue(world, item, reason, when="2030-01-01T00:00:00Z", state="closed"):
    from tests.webhooks.helpers import payload, post_github

    body = payload("github/webhooks/issues/closed.json")
    body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
    body["action"] = "closed" if state == "closed" else "reopened"
    body["issue"].update(number=item.number, id=item.forge_id, state=state, state_reason=reason,
                         updated_at=when, closed_at=when if state == "closed" else None, html_url=item.html_url)
    assert post_github(world.client, "issues", body).status_code == 202


def test_pull_request_merged_after_the_item_closed_as_not_planned_proposes_a_payout(world):
    """The item is closed as not planned: its funders are told to take their money back
    (and it goes back by itself after 14 days). A "Fixes #N" PR merged afterwards must
    not turn that money into a payout: closed as not planned → nothing."""
    item = world.issue(501)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8501)
    world.claim(item, ama)
    _close_issue(world, item, "not_planned")
    assert world.payouts_of(item) == []
    world.pull(1501, "Fixes #501", author_id=8501, merged=True)
    assert world.payouts_of(item) == []


def test_certification_revoked_before_execution_keeps_the_share_owed_until_certified_again(world, notices_sent):
    from marketplace.claims.models import Certification

    ama = world.implementor("ama@example.org", github_id=8502)
    manual(world, ama)
    payout = merged(world, 502, 10000, ama, 8502)
    world.approve(payout, [(ama.id, 1)])
    for cert in world.session.scalars(select(Certification).where(Certification.user_id == ama.id)):
        certification.revoke(cert, actor=world.admin)
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert share.state is ShareState.awaiting_certification
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000
    with pytest.raises(payouts.PayoutError):
        payouts.record_manual_payout(share.id, reference="EARLY", paid_on=utcnow().date(), admin=world.admin)
    certification.grant(ama, issuer=world.maintainer, project_id=world.project.id, note="again")
    assert share.state is ShareState.awaiting_manual_payout
    assert [n for n in notices_sent if n[0] == "share"] == [("share", "how_to_receive", share.id)]
    payouts.record_manual_payout(share.id, reference="BANK-502", paid_on=utcnow().date(), admin=world.admin)
    assert (balance(AccountKind.contributor_payable, user_id=ama.id), balance(AccountKind.payouts_paid)) == (0, 9000)
    assert check() == []


def test_reopened_and_closed_again_after_payout_pays_nothing_more(world):
    ama = world.implementor("ama@example.org", github_id=8503)
    manual(world, ama)
    payout = merged(world, 503, 10000, ama, 8503)
    item = world.session.get(BacklogItem, payout.item_id)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    _close_issue(world, item, "completed", when="2030-01-01T00:00:00Z")
    _close_issue(world, item, None, when="2030-01-02T00:00:00Z", state="open")
    _close_issue(world, item, "completed", when="2030-01-03T00:00:00Z")
    world.pull(1504, "Fixes #503", author_id=8503, merged=True)
    assert world.payouts_of(item) == [payout]
    assert world.session.get(Payout, payout.id).flagged_at is not None
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000
    assert check() == []


def test_recipient_switching_to_stripe_takes_a_manual_share_away_from_the_fiscal_host(world, stripe_api):
    """Ama is paid by hand. The fiscal host sends her 90.00 by bank; before the host
    records the reference, Ama sets up Stripe (her onboarding completes at once). Her
    share leaves ``awaiting_manual_payout`` and is transferred by Stripe too: paid
    twice, and the host's recording is refused. A share the fiscal host may be paying
    must stay on the manual rail until the host records it (or releases it)."""
    from marketplace.payments import stripe_client

    ama = world.implementor("ama@example.org", github_id=8511)
    manual(world, ama)
    payout = merged(world, 511, 10000, ama, 8511)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert share.state is ShareState.awaiting_manual_payout
    # (The host's bank transfer is on its way.) Ama switches to Stripe and finishes onboarding.
    account_id = stripe_client.create_connected_account(ama.id, country="KE", email=ama.email)
    payouts.attach_stripe_account(ama.id, account_id)
    payouts.on_account_updated(stripe_api.activate(account_id))
    payouts.transfer(share.id)  # the transfer job, if one was queued
    payouts.record_manual_payout(share.id, reference="BANK-511", paid_on=utcnow().date(), admin=world.admin)
    assert stripe_api.transfers == {}
    assert (share.state, share.manual_reference, balance(AccountKind.payouts_paid)) == (
        ShareState.paid, "BANK-511", 9000)


# --- jobs queued in a transaction -------------------------------------------------------------------

def test_money_jobs_run_when_a_savepoint_is_released_not_when_the_transaction_commits(world, monkeypatch):
    """marketplace/tasks.py dispatches the queued jobs on SQLAlchemy's ``after_commit``, which
    also fires when a SAVEPOINT is released, and every ledger.post() releases one.
    So in the payout cron, the transfer job of the first executed payout's share is
    dispatched while the second payout's money is posted, before the cron commits
    (README: "jobs run in-process right after the commit"; a rollback should drop them).
    In-process on PostgreSQL that job blocks on the share row the cron holds: the cron
    hangs; with RQ, a job of a transaction that later rolls back still runs."""
    import jobs.money

    ran = []
    monkeypatch.setattr(jobs.money, "transfer_share", lambda share_id: ran.append(share_id))
    ama = world.implementor("ama@example.org", github_id=8601)
    kofi = world.implementor("kofi@example.org", github_id=8602)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.stripe, stripe_account_id="acct_jobs",
                                    transfers_active=True))
    manual(world, kofi)
    first, second = merged(world, 601, 10000, ama, 8601), merged(world, 602, 5000, kofi, 8602)
    world.approve(first, [(ama.id, 1)])
    world.approve(second, [(kofi.id, 1)])
    done = payouts.retry_due(utcnow() + AFTER_WINDOW)
    assert done["executed"] == [first.id, second.id]
    assert first.shares[0].state is ShareState.transferring
    assert ran == []  # nothing has committed yet


@pytest.mark.postgres
def test_payout_cron_blocks_on_its_own_transfer_job_in_process_on_postgresql(race_app, monkeypatch):
    """The consequence of the test above without Redis on PostgreSQL: the cron executes
    two payouts; the first one's transfer job is run during the second's ledger
    posting, in its own session and connection, and waits for the share row the
    cron's own open transaction holds, while the cron waits for the job: a deadlock
    PostgreSQL cannot see. A lock timeout of 3 s stands in for "for ever" here; without
    it the payout cron never returns."""

    import sqlalchemy as sa

    from marketplace.accounts.models import User
    from marketplace.backlog.models import ItemState
    from marketplace.extensions import db
    from marketplace.payments import stripe_client
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    monkeypatch.setitem(race_app.config, "STRIPE_API_KEY", "sk_test_local")
    monkeypatch.setitem(race_app.config, "STRIPE_API_BASE", server.url)
    monkeypatch.setitem(race_app.config, "PAYOUT_DISPUTE_WINDOW_DAYS", 7)

    def lock_timeout(dbapi_connection, record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        dbapi_connection.commit()

    try:
        with race_app.app_context():
            db.engine.dispose()
            sa.event.listen(db.engine, "connect", lock_timeout)
            rows, people = _race_world("cron", items=2)
            kofi = User(display_name="kofi-cron", is_implementor=True, email_verified_at=utcnow())
            kofi.set_email("kofi-cron@example.org")
            db.session.add(kofi)
            db.session.flush()
            certification.grant(kofi, issuer=people["admin"], project_id=None)
            ama = people["ama"]
            account_id = stripe_client.create_connected_account(ama.id, country="KE", email=ama.email)
            server.activate(account_id)
            db.session.add_all([PayoutAccount(user_id=ama.id, rail=PayoutRail.stripe, stripe_account_id=account_id,
                                              transfers_active=True),
                                PayoutAccount(user_id=kofi.id, rail=PayoutRail.manual, manual_details="bank")])
            ids = []
            for item, person, amount in ((rows[0], ama, 10000), (rows[1], kofi, 5000)):
                item.state = ItemState.closed
                pledge = pledges.create(item, people["funder"].id, Money(amount, "USD"), rail=Rail.bank_transfer,
                                        actor="t")
                pledges.mark_received(pledge.id, Money(amount, "USD"), actor="t")
                [payout] = payouts.propose(item, reason="closed_completed")
                payouts.approve(payout.id, maintainer=people["keeper"], recipients=[(person.id, 1)])
                ids.append(payout.id)
            db.session.commit()
            db.session.remove()
        with race_app.app_context():
            # A cron waiting on a row lock its own transaction holds would wait
            # for ever; lock_timeout turns that wait into an error, so both
            # payouts executed is the proof that it never waited for itself.
            done = payouts.retry_due(utcnow() + AFTER_WINDOW)
            db.session.commit()
            db.session.remove()
        assert done["executed"] == ids
        with race_app.app_context():
            share = db.session.get(Payout, ids[0]).shares[0]
            assert share.state is ShareState.paid, share.state
            assert [t["amount"] for t in server.transfers.values()] == [9000]
            db.session.remove()
    finally:
        with race_app.app_context():
            if sa.event.contains(db.engine, "connect", lock_timeout):
                sa.event.remove(db.engine, "connect", lock_timeout)
            db.engine.dispose()
        server.stop()

"""Issue 6 scenarios, with a 10% fee: from a merged pull request to a payout,
driven by signed recorded GitHub webhooks; exact amounts in USD cents."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from marketplace.backlog.models import BacklogItem
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.models import Claim, ClaimState
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail, PayoutState, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW, balance, escrow
from tests.webhooks.helpers import payload, post_github


def test_unmerged_pull_request_pays_nothing_then_the_merged_one_proposes_9000_plus_1000(world):
    item = world.issue(101)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=5001)
    claim = world.claim(item, ama)
    world.pull(201, "Fixes #101", author_id=5001, merged=False)
    assert world.payouts_of(item) == []
    world.pull(202, "Fixes #101", author_id=5001, merged=True)
    [payout] = world.payouts_of(item)
    assert (payout.state, payout.gross_minor, payout.fee_minor) == (PayoutState.proposed, 10000, 1000)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(ama.id, 9000)]
    assert payout.suggested_recipient_id == ama.id and payout.pull_request.number == 202
    assert world.session.get(Claim, claim.id).state is ClaimState.completed
    # Not paid until approved: the money is still in escrow, nobody is owed anything.
    assert escrow(item.id) == 10000
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 0
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW) is False
    assert escrow(item.id) == 10000
    # The same merged event again proposes nothing more.
    world.pull(202, "Fixes #101", author_id=5001, merged=True)
    assert len(world.payouts_of(item)) == 1


def test_one_pull_request_closing_two_funded_items_makes_two_payouts(world):
    first, second = world.issue(111), world.issue(112)
    world.fund(first, 5000)
    world.fund(second, 3000)
    ama = world.implementor("ama@example.org", github_id=5002)
    world.claim(first, ama)
    world.claim(second, ama)
    world.pull(210, "Fixes #111, fixes #112", author_id=5002, merged=True)
    got = []
    for item in (first, second):
        [payout] = world.payouts_of(item)
        world.approve(payout, [(ama.id, 1)])
        got.append((payout.shares[0].amount_minor, payout.fee_minor))
    assert got == [(4500, 500), (2700, 300)]


def test_escrow_10_01_split_equally_among_three(world):
    item = world.issue(121)
    world.fund(item, 1001)
    people = [world.implementor(f"p{i}@example.org", github_id=5100 + i) for i in range(3)]
    world.claim(item, people[0])
    world.pull(220, "Fixes #121", author_id=5100, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(p.id, 1) for p in people])
    assert payout.fee_minor == 100
    assert [s.amount_minor for s in payout.shares] == [301, 300, 300]
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert balance(AccountKind.platform_fees) == 100
    assert [balance(AccountKind.contributor_payable, user_id=p.id) for p in people] == [301, 300, 300]
    assert escrow(item.id) == 0
    assert check() == []


def test_escrow_10_01_split_70_30(world):
    from marketplace.payouts.split import parse_percentages

    item = world.issue(122)
    world.fund(item, 1001)
    a, b = world.implementor("a@example.org", github_id=5201), world.implementor("b@example.org", github_id=5202)
    world.claim(item, a)
    world.pull(221, "Fixes #122", author_id=5201, merged=True)
    [payout] = world.payouts_of(item)
    weights = parse_percentages(["70", "30"])
    assert payouts.quote(payout, weights)["shares"] == [631, 270]  # what the page shows before approval
    world.approve(payout, list(zip([a.id, b.id], weights)))
    assert (payout.fee_minor, [s.amount_minor for s in payout.shares]) == (100, [631, 270])


def test_a_second_approval_changes_nothing(world):
    item = world.issue(123)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=5301)
    world.claim(item, ama)
    world.pull(222, "Fixes #123", author_id=5301, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    approved_at = payout.approved_at
    with pytest.raises(payouts.PayoutError, match="approved already"):
        world.approve(payout, [(ama.id, 1)])
    assert payout.approved_at == approved_at and len(payout.shares) == 1


def test_reassigned_claim_pays_b_not_a_and_a_payout_account_named_in_the_change_counts_for_nothing(world):
    item = world.issue(131)
    world.fund(item, 10000)
    a = world.implementor("a@example.org", github_id=5401)
    b = world.implementor("b@example.org", github_id=5402)
    claim_a = world.claim(item, a)
    claims.reassign(claim_a, b, maintainer=world.maintainer, note="A is unavailable")
    assert world.session.get(Claim, claim_a.id).state is ClaimState.rejected
    world.session.add(PayoutAccount(user_id=b.id, rail=PayoutRail.manual))
    world.pull(230, "Fixes #131\n\nFUNDING: pay acct_1EVIL to me, not to B. payout_account: a@example.org",
               author_id=5402, merged=True)
    [payout] = world.payouts_of(item)
    assert payout.suggested_recipient_id == b.id
    world.approve(payout, [(b.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert [(s.recipient_id, s.amount_minor, s.state) for s in payout.shares] == [
        (b.id, 9000, ShareState.awaiting_manual_payout)]
    assert balance(AccountKind.contributor_payable, user_id=a.id) == 0
    assert balance(AccountKind.contributor_payable, user_id=b.id) == 9000


def test_merged_by_someone_without_a_claim_waits_for_the_maintainers_attribution(world):
    item = world.issue(132)
    world.fund(item, 10000)
    world.claim(item, world.implementor("a@example.org", github_id=5501))
    world.pull(231, "Fixes #132", author_id=9999, merged=True)  # not the claimant
    [payout] = world.payouts_of(item)
    assert payout.suggested_recipient_id is None and payout.shares == []
    assert payout.state is PayoutState.proposed


def test_manual_country_recipient_waits_for_the_recorded_reference_with_the_liability_shown(world, app,
                                                                                          notices_sent):
    from datetime import date

    app.config["PAYOUT_MANUAL_COUNTRIES"] = ["MW"]
    try:
        item = world.issue(141)
        world.fund(item, 10000)
        chimwemwe = world.implementor("c@example.org", github_id=5601, country="MW")
        assert payouts.manual_rail(chimwemwe.id)
        world.claim(item, chimwemwe)
        world.pull(240, "Fixes #141", author_id=5601, merged=True)
        [payout] = world.payouts_of(item)
        world.approve(payout, [(chimwemwe.id, 1)])
        payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
        [share] = payout.shares
        assert (share.state, share.rail) == (ShareState.awaiting_manual_payout, PayoutRail.manual)
        assert balance(AccountKind.contributor_payable, user_id=chimwemwe.id) == 9000  # the liability
        assert [n for n in notices_sent if n[0] == "share"] == [("share", "how_to_receive", share.id)]
        payouts.record_manual_payout(share.id, reference="MPAMBA-2026-0042", paid_on=date(2026, 11, 28),
                                     admin=world.admin)
        assert balance(AccountKind.contributor_payable, user_id=chimwemwe.id) == 0
        assert balance(AccountKind.payouts_paid) == 9000
        assert (share.state, payout.state) == (ShareState.paid, PayoutState.paid)
        with pytest.raises(payouts.PayoutError):
            payouts.record_manual_payout(share.id, reference="again", paid_on=date(2026, 11, 28),
                                         admin=world.admin)
        assert balance(AccountKind.payouts_paid) == 9000
        assert check() == []
    finally:
        app.config["PAYOUT_MANUAL_COUNTRIES"] = []


def test_dispute_on_one_of_two_pledges_before_execution_pays_only_the_undisputed_30(world):
    item = world.issue(151)
    big, small = world.fund(item, 5000), world.fund(item, 3000)
    ama = world.implementor("ama@example.org", github_id=5701)
    world.claim(item, ama)
    world.pull(250, "Fixes #151", author_id=5701, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payout.gross_minor == 8000
    # A chargeback opens on the 50.00 pledge during the dispute window.
    assert pledges.transition(big.id, PledgeState.disputed)
    payouts.on_pledge_disputed(big.id)
    assert payout.state is PayoutState.held
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW) is False
    assert escrow(item.id) == 8000
    # The maintainer approves what is undisputed.
    world.approve(payout, [(ama.id, 1)])
    assert (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor) == (3000, 300, 2700)
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert escrow(item.id) == 5000  # the disputed 50.00 stays held
    assert world.session.get(Pledge, big.id).state is PledgeState.disputed
    assert world.session.get(Pledge, small.id).state is PledgeState.released
    assert check() == []


def test_uncertified_claimant_waits_in_awaiting_certification_until_a_maintainer_certifies(world):
    item = world.issue(161)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=5801, certified=False)
    world.claim(item, ama)
    world.pull(260, "Fixes #161", author_id=5801, merged=True)
    [payout] = world.payouts_of(item)
    assert payout.state is PayoutState.awaiting_certification
    with pytest.raises(payouts.PayoutError, match="certified"):
        world.approve(payout, [(ama.id, 1)])
    certification.grant(ama, issuer=world.maintainer, project_id=world.project.id, note="trusted")
    assert payout.state is PayoutState.proposed
    world.approve(payout, [(ama.id, 1)])
    assert payout.shares[0].amount_minor == 9000


def test_closed_as_not_planned_proposes_nothing_and_closed_completed_waits_for_attribution(world):
    planned, dropped = world.issue(171), world.issue(172)
    world.fund(planned, 2000)
    world.fund(dropped, 2000)
    for item, reason in ((planned, "completed"), (dropped, "not_planned")):
        body = payload("github/webhooks/issues/closed.json")
        body["repository"] = payload("github/webhooks/issues/opened.json")["repository"]
        body["issue"].update(number=item.number, id=item.forge_id, state="closed", state_reason=reason,
                             updated_at="2030-01-01T00:00:00Z", closed_at="2030-01-01T00:00:00Z",
                             html_url=item.html_url)
        assert post_github(world.client, "issues", body).status_code == 202
    [payout] = world.payouts_of(planned)
    assert (payout.reason, payout.suggested_recipient_id, payout.state) == (
        "closed_completed", None, PayoutState.proposed)
    assert world.payouts_of(dropped) == []


def test_reopened_after_payout_is_flagged_and_never_pays_again(world):
    item = world.issue(181)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=5901)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    world.claim(item, ama)
    world.pull(280, "Fixes #181", author_id=5901, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    flagged = payouts.on_item_reopened(world.session.get(BacklogItem, item.id))
    assert flagged == [payout.id] and payout.flagged_at is not None
    # Solved again by another merged change: nothing more to pay (escrow is empty).
    world.pull(281, "Fixes #181", author_id=5901, merged=True)
    assert world.payouts_of(item) == [payout]
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000


def test_claim_rules_cap_one_approved_per_item_solved_items_and_lapses(world, app):
    item, other = world.issue(191), world.issue(192)
    a = world.implementor("a@example.org", github_id=6001)
    b = world.implementor("b@example.org", github_id=6002)
    deadline = utcnow().date() + timedelta(days=2)
    claim_a = claims.request_claim(item, a, plan="p", estimate_days=2, deadline=deadline)
    claim_b = claims.request_claim(item, b, plan="p", estimate_days=2, deadline=deadline)
    claims.approve(claim_a, maintainer=world.maintainer)
    with pytest.raises(claims.ClaimError, match="approved already"):
        claims.approve(claim_b, maintainer=world.maintainer)
    claims.set_open_to_team(item, True, maintainer=world.maintainer)
    claims.approve(claim_b, maintainer=world.maintainer)
    # The cap (3 by default) on open claims per person.
    for number in (193, 194):
        claims.request_claim(world.issue(number), a, plan="p", estimate_days=2, deadline=deadline)
    with pytest.raises(claims.ClaimError, match="3 open claims"):
        claims.request_claim(other, a, plan="p", estimate_days=2, deadline=deadline)
    # Warned once before the deadline, lapsed after it.
    assert claims.warn_lapsing(utcnow()) == [claim_a.id, claim_b.id]
    assert claims.warn_lapsing(utcnow()) == []
    assert claims.lapse_due(utcnow() + timedelta(days=3)) == [claim_a.id, claim_b.id]
    # A solved item cannot be claimed.
    world.fund(other, 100)
    world.pull(290, "Fixes #192", author_id=7777, merged=True)
    with pytest.raises(claims.ClaimError, match="solved"):
        claims.request_claim(world.session.get(BacklogItem, other.id), b, plan="p", estimate_days=2,
                             deadline=deadline)


def test_a_claim_with_a_linked_open_change_is_submitted_and_does_not_lapse(world):
    item = world.issue(195)
    ama = world.implementor("ama@example.org", github_id=6101)
    claim = world.claim(item, ama)
    world.pull(295, "Fixes #195", author_id=6101, merged=False, state="open")
    assert world.session.get(Claim, claim.id).state is ClaimState.submitted
    assert claims.lapse_due(utcnow() + timedelta(days=30)) == []


def test_self_service_refund_stops_once_a_claim_is_approved(world):
    item = world.issue(196)
    pledge = world.fund(item, 2500)
    world.claim(item, world.implementor("ama@example.org", github_id=6201))
    with pytest.raises(pledges.PledgeError, match="claim"):
        pledges.self_service_refund(pledge.id, actor="test")
    assert world.session.get(Pledge, pledge.id).held_minor == 2500


@pytest.mark.ledger_tampered
def test_ledger_check_names_a_tampered_payout(world):
    from marketplace.payouts.models import PayoutShare

    item = world.issue(197)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=6301)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    world.claim(item, ama)
    world.pull(297, "Fixes #197", author_id=6301, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert check() == []
    world.session.get(PayoutShare, payout.shares[0].id).amount_minor = 9001
    payout.gross_minor = 10001
    world.session.flush()
    rules = {(v.rule, v.subject, v.amount) for v in check()}
    assert rules == {("payout released differs from its gross", str(payout.id), 1)}
    payout.gross_minor = 10000
    world.session.flush()
    assert {(v.rule, v.amount) for v in check()} == {("payout fee and shares differ from its gross", -1)}


def test_a_recipient_who_switches_to_the_manual_rail_is_paid_by_the_fiscal_host(world, notices_sent):
    item = world.issue(198)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=6401)
    world.claim(item, ama)
    world.pull(298, "Fixes #198", author_id=6401, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert share.state is ShareState.awaiting_account  # no payout method yet
    with pytest.raises(payouts.PayoutError):
        payouts.choose_manual_rail(ama.id, "   ")
    assert share.state is ShareState.awaiting_account
    payouts.choose_manual_rail(ama.id, "M-Pesa +254 700 000 000")
    assert (share.state, share.rail) == (ShareState.awaiting_manual_payout, PayoutRail.manual)
    assert [n for n in notices_sent if n[0] == "share"] == [("share", "how_to_receive", share.id)]  # told once
    assert balance(AccountKind.contributor_payable, user_id=ama.id) == 9000


def test_a_merged_gitlab_merge_request_pays_the_claimant_matched_by_gitlab_id(world, session, client):
    from marketplace.accounts.models import ForgeIdentity
    from marketplace.backlog.models import BacklogItem, ItemState
    from tests.conftest import make_repository
    from tests.webhooks.helpers import post_gitlab

    repo = make_repository("anbraten", "woodpecker-test", host="gitlab.com")
    repo.project.fee_rate_bps = 1000
    # Last updated before the recorded merge (2023-12-05 18:43): an issue still open
    # and updated after a merge that closes it would have been reopened.
    before_merge = datetime(2023, 12, 5, 18, 0)
    item = BacklogItem(repository=repo, forge_host="gitlab.com", forge_id=770007, number=7, title="GitLab item",
                       state=ItemState.open, html_url="https://gitlab.com/anbraten/woodpecker-test/-/issues/7",
                       forge_created_at=before_merge, forge_updated_at=before_merge)
    session.add(item)
    session.flush()
    world.fund(item, 10000)
    anbraten = world.user("anbraten@example.org", implementor=True)
    session.add(ForgeIdentity(user_id=anbraten.id, forge="gitlab", host="gitlab.com", forge_user_id=2251488,
                              login="anbraten"))
    certification.grant(anbraten, issuer=world.admin, project_id=None)
    world.claim(item, anbraten)
    data = payload("gitlab/webhooks/merge_request/merge.json")  # recorded: author 2251488, merged into main
    data["object_attributes"]["description"] = "Closes #7"
    assert post_gitlab(client, "Merge Request Hook", data).status_code == 202
    [payout] = world.payouts_of(item)
    assert (payout.suggested_recipient_id, payout.gross_minor, payout.fee_minor) == (anbraten.id, 10000, 1000)
    assert [s.amount_minor for s in payout.shares] == [9000]


def test_a_maintainer_cannot_approve_a_payout_to_themselves(world, session):
    from marketplace.projects.models import ProjectMaintainer

    item = world.issue(199)
    world.fund(item, 10000)
    dual = world.implementor("dual@example.org", github_id=6501)
    session.add(ProjectMaintainer(project_id=world.project.id, user_id=dual.id, granted_by="test"))
    world.claim(item, dual)
    world.pull(299, "Fixes #199", author_id=6501, merged=True)
    [payout] = world.payouts_of(item)
    with pytest.raises(payouts.PayoutError, match="another maintainer"):
        payouts.approve(payout.id, maintainer=dual, recipients=[(dual.id, 1)])
    assert payout.state is PayoutState.proposed
    world.approve(payout, [(dual.id, 1)])  # the other maintainer may
    assert payout.state is PayoutState.approved

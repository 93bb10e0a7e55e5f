"""Claim e-mails state the item's money as the ledger held it when they were queued."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import select

from marketplace.claims import service as claims
from marketplace.notifications import notices
from marketplace.notifications.models import OutboxMessage
from marketplace.timeutil import utcnow


def _queued_claim_notices(session, kind: str):
    """The claim notices of ``kind`` in the outbox, each with ``args`` as compose takes them."""
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.notice_subject == "claim",
                                                       OutboxMessage.notice_kind == kind))
    return [SimpleNamespace(args=(row.notice_subject, row.notice_kind, row.object_id, row.figures)) for row in rows]


def test_claim_approved_email_gives_30_in_escrow_and_about_27_to_the_claimant_as_queued(world, session):
    item = world.issue(601)
    world.fund(item, 3000)  # 30.00 USD; the project's fee is 10%
    ama = world.implementor("ama601@example.org", github_id=8601)
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    [requested] = _queued_claim_notices(session, "requested")
    claims.approve(claim, maintainer=world.maintainer)
    [approved] = _queued_claim_notices(session, "approved")
    assert approved.args[3] == {"escrow": [[3000, "USD"]], "net": [[2700, "USD"]]}
    world.fund(item, 2000)  # more money arrives before the e-mail job runs
    [(to, _title, body)] = notices.compose(*approved.args)
    assert to == "ama601@example.org"
    assert "$30.00 in escrow, about $27.00 to you." in body
    [(to, _title, body)] = notices.compose(*requested.args)
    assert to == "maintainer@example.org"
    assert "$30.00 in escrow, about $27.00 to the implementor after the commons' fee." in body
    # Composed without queued figures (an older job), the ledger is read when it is sent.
    assert "$50.00 in escrow, about $45.00 to you." in notices.compose("claim", "approved", claim.id)[0][2]


def test_claim_email_on_an_item_with_nothing_in_escrow_says_so(world, session):
    item = world.issue(602)
    ama = world.implementor("ama602@example.org", github_id=8602)
    claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    [requested] = _queued_claim_notices(session, "requested")
    assert "Nothing is in escrow for this item yet." in notices.compose(*requested.args)[0][2]


def test_payout_proposed_email_gives_the_escrow_as_queued(world, session, monkeypatch):
    queued = []
    monkeypatch.setattr(notices, "_queue", lambda *args: queued.append(args))
    item = world.issue(603)
    world.fund(item, 3000)
    ama = world.implementor("ama603@example.org", github_id=8603)
    world.claim(item, ama)
    world.pull(1603, "Fixes #603", author_id=8603, merged=True)
    [payout] = world.payouts_of(item)
    [proposed] = [args for args in queued if args[:3] == ("payout", "proposed", payout.id)]
    assert proposed[3] == {"escrow": [[3000, "USD"]]}
    world.fund(item, 2000)
    bodies = [body for to, _title, body in notices.compose(*proposed) if to == "maintainer@example.org"]
    assert bodies and "holds $30.00" in bodies[0]

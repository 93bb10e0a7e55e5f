"""Every e-mail under ``templates/email`` renders: a non-empty subject and body, no
Jinja left over, for every notice the notifications domain composes or sends."""
from datetime import timedelta
from types import SimpleNamespace

import pytest

from marketplace.claims import service as claims
from marketplace.claims.models import Certification
from marketplace.notifications import mail, notices
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail
from marketplace.pledges.models import PledgeState
from marketplace.timeutil import utcnow
from tests.conftest import ROOT
from tests.payouts.helpers import AFTER_WINDOW

NOTICES = sorted(p.name for p in (ROOT / "templates" / "email").iterdir() if (p / "subject.txt").exists())


def _sound(subject: str, body: str) -> None:
    assert subject.strip() and "\n" not in subject
    assert body.strip()
    for left in ("{{", "}}", "{%", "%}", "%(", "None"):
        assert left not in subject and left not in body, (left, subject, body)


def test_every_composed_notice_renders(world, session):
    item = world.issue(402)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8002)
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    claims.approve(claim, maintainer=world.maintainer)
    for kind in notices.CLAIM_KINDS:
        mails = notices.compose("claim", kind, claim.id)
        assert mails, kind
        for _to, subject, body in mails:
            _sound(subject, body)
    world.pull(1402, "Fixes #402", author_id=8002, merged=True)
    [payout] = world.payouts_of(item)
    for _to, subject, body in notices.compose("payout", "proposed", payout.id):
        _sound(subject, body)
    world.approve(payout, [(ama.id, 1)])
    [(_to, subject, body)] = notices.compose("payout", "approved", payout.id)
    _sound(subject, body)
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    for kind in ("how_to_receive", "failed", "returned"):
        [(_to, subject, body)] = notices.compose("share", kind, share.id)
        _sound(subject, body)
    payouts.record_manual_payout(share.id, reference="BANK-2", paid_on=utcnow().date(), admin=world.admin)
    [(_to, subject, body)] = notices.compose("share", "paid", share.id)
    _sound(subject, body)
    cert = session.query(Certification).filter_by(user_id=ama.id).one()
    [(_to, subject, body)] = notices.compose("certification", "granted", cert.id)
    _sound(subject, body)


def _context():
    person = SimpleNamespace(display_name="Ama", email="ama@example.org")
    item = SimpleNamespace(title="Issue 7", number=7)
    pledge = SimpleNamespace(funder=person, item=item, currency="USD", held_minor=2500,
                             state=PledgeState.released)
    return {"user": person, "funder": person, "inviter": person, "link": "http://example.org/x",
            "project": SimpleNamespace(name="ODK"), "item": item, "pledge": pledge, "why": "closed",
            "not_planned": True, "days": 30, "target": item, "amount_minor": 2500}


@pytest.mark.parametrize("notice", [n for n in NOTICES if n in {
    "account_exists", "account_verify", "password_reset", "maintainer_invitation",
    "pledge_refund_offered", "pledge_refunded", "refund_failed"}])
def test_every_sent_mail_renders(app, notice):
    with app.test_request_context():
        subject, body = mail.render(notice, **_context())
    _sound(subject, body)


def test_every_template_directory_has_subject_and_body():
    for directory in (ROOT / "templates" / "email").iterdir():
        names = {p.name for p in directory.iterdir()}
        assert names in ({"subject.txt", "body.txt"}, {"body.txt"}), directory
    assert len(NOTICES) >= 20

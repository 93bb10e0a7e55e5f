"""E-mail notices are composed when sent, with the ledger's figures at that time."""
from datetime import timedelta

from marketplace.claims import service as claims
from marketplace.claims.models import Certification
from marketplace.notifications import notices
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW


def bodies(subject, kind, object_id):
    return [(to, title, body) for to, title, body in notices.compose(subject, kind, object_id)]


def test_every_notice_of_the_loop_names_the_right_person_and_amount(world, session):
    item = world.issue(401)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8001)
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    [(to, title, body)] = bodies("claim", "requested", claim.id)
    assert to == "maintainer@example.org" and "ama asks to work on \"Issue 401\"" in body
    claims.approve(claim, maintainer=world.maintainer)
    [(to, title, body)] = bodies("claim", "approved", claim.id)
    assert (to, title) == ("ama@example.org", "Your claim was approved") and "Fixes #401" in body
    assert bodies("claim", "lapsing", claim.id)[0][1] == "Your claim's deadline is near"
    world.pull(1401, "Fixes #401", author_id=8001, merged=True)
    [payout] = world.payouts_of(item)
    proposed = bodies("payout", "proposed", payout.id)
    assert [(to, "$100.00" in body) for to, _, body in proposed] == [("maintainer@example.org", True),
                                                                      ("ama@example.org", False)]
    world.approve(payout, [(ama.id, 1)])
    [(to, title, body)] = bodies("payout", "approved", payout.id)
    assert to == "ama@example.org" and "$90.00" in body
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    assert bodies("share", "paid", share.id) == []  # not paid yet: the ledger has no payment to report
    assert "$90.00" in bodies("share", "how_to_receive", share.id)[0][2]
    payouts.record_manual_payout(share.id, reference="BANK-1", paid_on=utcnow().date(), admin=world.admin)
    [(to, title, body)] = bodies("share", "paid", share.id)
    assert (to, title) == ("ama@example.org", "You were paid") and "$90.00" in body
    cert = session.query(Certification).filter_by(user_id=ama.id).one()
    [(to, title, body)] = bodies("certification", "granted", cert.id)
    assert (to, title) == ("ama@example.org", "You are certified") and "every member project" in body

"""Issue 20: the approval e-mail promises a dispute window only when there is one."""
from __future__ import annotations

from marketplace.notifications import notices
from marketplace.payouts.models import PayoutAccount, PayoutRail


def _approved_notice(world, session, number: int) -> str:
    item = world.issue(number)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8001)
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    world.pull(1000 + number, f"Fixes #{number}", author_id=8001, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    [(to, _title, body)] = notices.compose("payout", "approved", payout.id)
    assert to == "ama@example.org" and "$90.00" in body
    return body


def test_with_a_0_day_dispute_window_the_approval_email_promises_no_window(app, world, session):
    days = app.config["PAYOUT_DISPUTE_WINDOW_DAYS"]
    app.config["PAYOUT_DISPUTE_WINDOW_DAYS"] = 0
    try:
        body = _approved_notice(world, session, 402)
    finally:
        app.config["PAYOUT_DISPUTE_WINDOW_DAYS"] = days
    assert "dispute window has passed" not in body and "paid after" not in body
    assert "This project has no dispute window: it is paid now." in body


def test_with_a_3_day_dispute_window_the_approval_email_gives_its_end(app, world, session):
    days = app.config["PAYOUT_DISPUTE_WINDOW_DAYS"]
    app.config["PAYOUT_DISPUTE_WINDOW_DAYS"] = 3
    try:
        body = _approved_notice(world, session, 403)
    finally:
        app.config["PAYOUT_DISPUTE_WINDOW_DAYS"] = days
    assert "once the dispute window has passed" in body and "no dispute window" not in body

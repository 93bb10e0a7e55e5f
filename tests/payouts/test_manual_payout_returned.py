"""An executed manual payout whose bank or mobile-money transfer came back is
undone by an admin: the exact inverse, once, with a reason, the recipient told."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.audit.models import AuditEvent
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind, LedgerTransaction
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutAccount, PayoutRail, PayoutState, ShareState
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW, balance, escrow
from tests.payouts.test_payout_views import post, scene  # noqa: F401


def _paid_by_hand(world, number: int, amount: int):
    ama = world.implementor(f"ama{number}@example.org", github_id=7000 + number)
    world.session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual, manual_details="M-PESA 0700"))
    item = world.issue(number)
    pledge = world.fund(item, amount)
    world.claim(item, ama)
    world.pull(number + 1000, f"Fixes #{number}", author_id=7000 + number, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    payouts.record_manual_payout(share.id, reference="MPESA-1", paid_on=utcnow().date(), admin=world.admin)
    return item, pledge, payout, share


def test_returned_manual_payout_of_5_puts_500_back_in_escrow_and_the_fee_to_0_once(world, notices_sent):
    item, pledge, payout, share = _paid_by_hand(world, 501, 500)
    assert (payout.gross_minor, share.amount_minor, payout.fee_minor) == (500, 450, 50)
    assert (escrow(item.id), balance(AccountKind.platform_fees), balance(AccountKind.payouts_paid)) == (0, 50, 450)
    payouts.return_manual_payout(payout.id, reason="the bank sent it back: account closed", admin=world.admin)
    assert (escrow(item.id), balance(AccountKind.platform_fees), balance(AccountKind.payouts_paid)) == (500, 0, 0)
    assert world.session.get(Pledge, pledge.id).state is PledgeState.held
    assert (payout.state, share.state) == (PayoutState.returned, ShareState.returned)
    assert ("share", "returned", share.id) in notices_sent
    assert world.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "payout.returned", AuditEvent.object_id == str(payout.id))) == 1
    # The money is the work's again: a new proposal of 5.00 waits for a maintainer.
    [_old, again] = world.payouts_of(item)
    assert (again.state, again.gross_minor) == (PayoutState.proposed, 500)
    transactions = world.session.scalar(select(func.count()).select_from(LedgerTransaction))
    with pytest.raises(payouts.PayoutError, match="returned already"):
        payouts.return_manual_payout(payout.id, reason="again", admin=world.admin)
    assert world.session.scalar(select(func.count()).select_from(LedgerTransaction)) == transactions
    assert escrow(item.id) == 500
    assert check() == []


def test_returning_without_a_reason_is_refused_and_posts_nothing(world, notices_sent):
    _item, _pledge, payout, _share = _paid_by_hand(world, 502, 500)
    with pytest.raises(payouts.PayoutError, match="reason"):
        payouts.return_manual_payout(payout.id, reason="   ", admin=world.admin)
    assert balance(AccountKind.platform_fees) == 50 and payout.state is PayoutState.paid


def test_admin_page_undoes_a_returned_payout_once_and_says_so_the_second_time(scene):
    host = scene.client(scene.admin)
    keeper = scene.client(scene.maintainer)
    assert post(keeper, f"/payouts/{scene.payout.id}/approve",
                **scene.split(approve="Approve", seen_gross="10000")).status_code == 303
    scene.session.add(PayoutAccount(user_id=scene.ama.id, rail=PayoutRail.manual))
    scene.session.add(PayoutAccount(user_id=scene.kofi.id, rail=PayoutRail.manual))
    assert payouts.execute(scene.payout.id, utcnow() + AFTER_WINDOW)
    scene.session.commit()
    payout = scene.session.get(Payout, scene.payout.id)
    for share in payout.shares:
        post(host, f"/admin/payouts/shares/{share.id}/paid", reference=f"BANK-{share.id}",
             paid_on=utcnow().date().isoformat())
    assert "Undo this payout" in host.get("/admin/payouts").get_data(as_text=True)
    url = f"/admin/payouts/{payout.id}/returned"
    assert post(host, url, reason="").status_code == 303
    assert balance(AccountKind.platform_fees) == 1000
    assert post(host, url, reason="returned by the bank").status_code == 303
    assert (escrow(scene.item.id), balance(AccountKind.platform_fees)) == (10000, 0)
    page = host.get("/admin/payouts").get_data(as_text=True)
    assert "returned / not paid: returned by the bank" in page
    assert post(host, url, reason="returned by the bank").status_code == 303
    assert "returned already; nothing was posted" in host.get("/admin/payouts").get_data(as_text=True)
    assert escrow(scene.item.id) == 10000
    assert check() == []


def test_admin_refund_form_without_seen_refunded_refunds_nothing_and_says_why(scene):
    host = scene.client(scene.admin)
    url = f"/admin/pledges/{scene.pledge.id}/refund"
    form = {"amount": "15.00", "reason": "funder asked", "reference": "BACK-1"}
    assert post(host, url, **form).status_code == 303
    page = host.get("/admin/pledges").get_data(as_text=True)
    assert "did not say what this pledge had had back" in page and "Nothing was refunded" in page
    assert scene.session.get(Pledge, scene.pledge.id).refunded_minor == 0
    assert balance(AccountKind.refunds) == 0
    assert post(host, url, **form, seen_refunded="0").status_code == 303
    assert scene.session.get(Pledge, scene.pledge.id).refunded_minor == 1500
    assert check() == []


def _awaited_transfer(scene, amount: int) -> Pledge:
    from marketplace.money import Money
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Rail

    pledge = pledges.create(scene.item, scene.funder.id, Money(amount, "USD"), rail=Rail.bank_transfer, actor="test")
    scene.session.commit()
    return pledge


def test_bank_transfer_bringing_20_for_a_40_pledge_is_held_as_20_once_the_admin_confirms_it(scene):
    from marketplace.backlog.models import ItemFunding

    pledge = _awaited_transfer(scene, 4000)
    host = scene.client(scene.admin)
    url = f"/admin/pledges/{pledge.id}/confirm"
    today = utcnow().date().isoformat()
    post(host, url, amount="20.00", received_on=today, reference="BANK-20")
    page = host.get("/admin/pledges").get_data(as_text=True)
    assert "$20.00 arrived, $40.00 was pledged" in page and "2000" not in page
    assert scene.session.get(Pledge, pledge.id).state is PledgeState.pending
    post(host, url, amount="20.00", received_on=today, reference="BANK-20", other_amount="y")
    scene.session.expire_all()
    pledge = scene.session.get(Pledge, pledge.id)
    assert (pledge.state, pledge.amount_minor, pledge.pledged_minor) == (PledgeState.held, 2000, 4000)
    assert escrow(scene.item.id) == 10000 + 2000
    assert scene.session.get(ItemFunding, (scene.item.id, "USD")).pending_minor == 0
    assert "Pledge %d is held: $20.00." % pledge.id in host.get("/admin/pledges").get_data(as_text=True)
    mine = scene.client(scene.funder).get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "You pledged $40.00; your transfer brought $20.00" in mine
    assert check() == []


def test_bank_transfer_bringing_more_than_pledged_is_held_as_what_arrived(scene):
    pledge = _awaited_transfer(scene, 4000)
    post(scene.client(scene.admin), f"/admin/pledges/{pledge.id}/confirm", amount="45.50",
         received_on=utcnow().date().isoformat(), reference="BANK-45", other_amount="y")
    scene.session.expire_all()
    assert scene.session.get(Pledge, pledge.id).amount_minor == 4550
    assert escrow(scene.item.id) == 10000 + 4550
    assert check() == []


def test_bank_transfer_received_on_a_future_date_is_refused(scene):
    from datetime import timedelta

    pledge = _awaited_transfer(scene, 4000)
    host = scene.client(scene.admin)
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    post(host, f"/admin/pledges/{pledge.id}/confirm", amount="40.00", received_on=tomorrow, reference="BANK-F")
    assert "cannot be in the future" in host.get("/admin/pledges").get_data(as_text=True)
    assert scene.session.get(Pledge, pledge.id).state is PledgeState.pending

"""Issue 20: a funder finds every pledge again on "My pledges" (linked from the
navigation and the account page); the navigation shows only what a role uses."""
from __future__ import annotations

from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Rail
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user
from tests.payouts.helpers import AFTER_WINDOW


def test_my_pledges_lists_each_pledge_with_state_rail_reference_what_it_paid_for_and_open_actions(
        app, world, session):
    world.funder.is_funder = True
    paid_item, open_item, bank_item = world.issue(501), world.issue(502), world.issue(503)
    paid = world.fund(paid_item, 10000)
    held = world.fund(open_item, 2500)
    bank = pledges.create(bank_item, world.funder.id, Money(4000, "USD"), rail=Rail.bank_transfer, actor="test")
    pledges.give_transfer_reference(bank)
    ama = world.implementor("ama@example.org", github_id=8001)
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    world.pull(1501, "Fixes #501", author_id=8001, merged=True)
    [payout] = world.payouts_of(paid_item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    session.commit()

    funder = as_user(app, world.funder)
    nav = funder.get("/account").get_data(as_text=True)
    assert nav.count('href="/account/pledges"') == 2  # the navigation and the account page
    page = funder.get("/account/pledges").get_data(as_text=True)
    assert page.index(bank_item.title) < page.index(open_item.title) < page.index(paid_item.title)  # newest first
    assert "$100.00 paid for pull request #1501 by ama" in page and "paid out" in page
    assert "$25.00" in page and "held in escrow" in page
    assert f"/pledges/{held.id}/refund" in page  # a card pledge on an unclaimed item can be taken back
    assert f"/pledges/{paid.id}/refund" not in page
    assert "$40.00" in page and "waiting for the payment" in page and "bank transfer" in page
    assert f"reference {bank.transfer_reference}" in page and f"/pledges/{bank.id}/cancel" in page
    assert f"/pledges/{bank.id}/pay" not in page  # no Checkout for a bank transfer
    # Another person's pledges are not listed.
    other = as_user(app, world.maintainer).get("/account/pledges").get_data(as_text=True)
    assert paid_item.title not in other and "You have no pledges yet." in other
    assert check() == []


def test_navigation_shows_only_what_the_persons_roles_use(app, world, session):
    funder, implementor = world.funder, world.user("imp@example.org", implementor=True)
    funder.is_funder, funder.is_implementor = True, False
    session.commit()
    funder_nav = as_user(app, funder).get("/").get_data(as_text=True)
    nav = funder_nav[funder_nav.index('<nav aria-label="Main">'):funder_nav.index("</nav>")]
    assert "My pledges" in nav and "My claims" not in nav and ">Payouts<" not in nav and ">Admin<" not in nav
    implementor_page = as_user(app, implementor).get("/").get_data(as_text=True)
    nav = implementor_page[implementor_page.index('<nav aria-label="Main">'):implementor_page.index("</nav>")]
    assert "My claims" in nav and ">Payouts<" in nav and "My pledges" not in nav

"""Two workers: the issue's "deleted" delivery and the merge of a pull request
saying "Fixes #N", at the same moment, on two real PostgreSQL sessions.

Worker A ends the deleted item (claims cancelled, the 30.00 USD pledge
refunded) and holds its transaction open; worker B then processes the merge.
B read the item before A committed: without a lock it saw it alive, linked
the pull request to it and marked it solved once A had committed, so a
deleted item carried a solver and a link (issue 11 §2: nothing attaches to
a deleted item).
"""
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from marketplace.timeutil import utcnow
from tests.webhooks.test_event_concurrency import _race, _repository, _store
from tests.webhooks.test_event_order import deliveries_for


@pytest.fixture(scope="module")
def race_app(database_url):
    from tests.races import race_database_app

    with race_database_app(database_url, f"{sa.make_url(database_url).database}_delete_race") as app:
        yield app


@pytest.mark.postgres
def test_a_merge_racing_the_deletion_of_its_issue_attaches_nothing_and_proposes_nothing(race_app):
    from jobs.webhooks import process_delivery
    from marketplace.accounts.models import User
    from marketplace.backlog.models import ItemLink, PullRequest
    from marketplace.backlog.service import find_item
    from marketplace.extensions import db
    from marketplace.ledger.check import check
    from marketplace.money import Money
    from marketplace.payouts.models import Payout
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Pledge, Rail
    from marketplace.standins.stripe import LocalStripe
    from tests.payouts.helpers import escrow

    stripe = LocalStripe()
    race_app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe.url)
    try:
        with race_app.app_context():
            _repository("delete")
            bodies = deliveries_for(63, ["merged", "deleted"])
            ids = _store(bodies)
            process_delivery(ids["opened"])
            funder = User(display_name="funder", email_verified_at=utcnow())
            funder.set_email("funder@example.org")
            db.session.add(funder)
            db.session.flush()
            pledge = pledges.create(find_item("github.com", 700063), funder.id, Money(3000, "USD"),
                                    rail=Rail.card, actor="test")
            pledge.payment_intent_id = f"pi_race_{pledge.id}"
            pledges.mark_received(pledge.id, Money(3000, "USD"), actor="test")
            pledge_id = pledge.id
            db.session.commit()
            db.session.remove()
        errors = _race(race_app, newer_id=ids["deleted"], older_id=ids["merged"])
        assert errors == []
        with race_app.app_context():
            item = find_item("github.com", 700063)
            assert item.deleted_at is not None
            assert item.solved_by_id is None
            pull = db.session.scalar(select(PullRequest).where(PullRequest.number == 1063))
            assert pull.merged_at is not None
            assert [link.item_id for link in db.session.scalars(
                select(ItemLink).where(ItemLink.pull_request_id == pull.id))] == [None]
            assert db.session.scalars(select(Payout).where(Payout.item_id == item.id)).all() == []
            assert db.session.get(Pledge, pledge_id).refunded_minor == 3000
            assert escrow(item.id) == 0
            assert check() == []
            db.session.rollback()
    finally:
        race_app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        stripe.stop()

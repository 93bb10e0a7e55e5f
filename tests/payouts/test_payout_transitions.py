"""Payout states move only along PAYOUT_ALLOWED_FROM, by one conditional
update (marketplace.payouts.service._move): a stale copy of the row cannot
move a payout the database has already moved elsewhere."""
import sqlalchemy as sa

from marketplace.payouts import service as payouts
from marketplace.payouts.models import PAYOUT_ALLOWED_FROM, Payout, PayoutState


def _proposed_payout(world) -> Payout:
    item = world.issue(301)
    world.fund(item, 5000)
    ama = world.implementor("ama@example.org", github_id=7301)
    world.claim(item, ama)
    world.pull(401, "Fixes #301", author_id=7301, merged=True)
    [payout] = world.payouts_of(item)
    assert payout.state is PayoutState.proposed
    return payout


def test_a_stale_copy_cannot_approve_a_payout_cancelled_in_the_database(world):
    payout = _proposed_payout(world)
    # Another session cancelled it; this session's copy still says proposed.
    world.session.execute(sa.update(Payout).where(Payout.id == payout.id).values(state=PayoutState.cancelled)
                          .execution_options(synchronize_session=False))
    assert payout.state is PayoutState.proposed
    assert payouts._move(payout, PayoutState.approved, note="late") is False
    assert (payout.state, payout.note) == (PayoutState.cancelled, None)


def test_every_move_outside_the_table_is_refused_and_changes_nothing(world):
    payout = _proposed_payout(world)
    refused = [to for to in PayoutState if to is not PayoutState.proposed
               and PayoutState.proposed not in PAYOUT_ALLOWED_FROM[to]]
    assert PayoutState.paid in refused and PayoutState.executing in refused
    for to in refused:
        assert payouts._move(payout, to) is False, to
        assert world.session.get(Payout, payout.id).state is PayoutState.proposed
    assert payouts._move(payout, PayoutState.held) is False  # held only from approved
    assert payouts._move(payout, PayoutState.awaiting_certification) is True
    assert world.session.scalar(sa.select(Payout.state).where(Payout.id == payout.id)) \
        is PayoutState.awaiting_certification

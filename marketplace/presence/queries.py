"""Reads the badges and the living comment share: where an item's bounty
stands, and a project's open bounties. Nothing here writes."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity
from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.backlog.queries import state_condition
from marketplace.claims.models import HOLDING_CLAIM_STATES, Claim
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.payouts.queries import paid_out
from marketplace.presence.models import RepositoryPresence

# The badge states, in the order an item goes through them.
STATES = ("open", "claimed", "solved", "paid", "closed")


@dataclass(frozen=True)
class BountyState:
    """Where an item's bounty stands.

    ``state``: open (nobody holds it), claimed (an approved or submitted
    claim), solved (the work is done, not paid yet), paid (a payout
    executed), closed (ended without the work: closed as not planned,
    duplicate, moved, deleted or made private; the money goes back).
    ``held``: (currency, minor units) in escrow now; ``paid``: executed
    payouts' gross, by currency; ``claimants``: forge logins (or names) of
    the people holding it.
    """

    state: str
    held: list[tuple[str, int]] = field(default_factory=list)
    paid: list[tuple[str, int]] = field(default_factory=list)
    claimants: list[str] = field(default_factory=list)

    @property
    def funded(self) -> bool:
        """Money is held, or was paid out: the item has (had) a bounty."""
        return bool(self.held or self.paid)


def holders(item: BacklogItem) -> list[str]:
    """Forge logins on ``item``'s host of the people whose claims hold it (their name when not linked)."""
    names = []
    for claim in db.session.scalars(select(Claim).where(
            Claim.item_id == item.id, Claim.state.in_(HOLDING_CLAIM_STATES)).order_by(Claim.id)):
        login = db.session.scalar(select(ForgeIdentity.login).where(
            ForgeIdentity.user_id == claim.claimant_id, ForgeIdentity.host == item.forge_host).limit(1))
        names.append(f"@{login}" if login else claim.claimant.display_name)
    return names


def bounty_state(item: BacklogItem) -> BountyState:
    """The :class:`BountyState` of ``item`` now."""
    held = sorted((f.currency, f.held_minor) for f in item.funding if f.held_minor > 0)
    paid = paid_out(item.id)
    if paid:
        state = "paid"
    elif item.closed_as_not_planned or item.deleted_at is not None or item.private_reason is not None:
        state = "closed"
    elif item.solved or item.solved_by_id is not None:
        state = "solved"
    else:
        state = "open"
    claimants = holders(item) if state in ("open", "solved") else []
    if state == "open" and claimants:
        state = "claimed"
    return BountyState(state, held, paid, claimants)


def project_open_bounties(project_id: int) -> list[tuple[str, int]]:
    """(currency, minor units) held on the project's open, visible items, by currency
    (the same items as the project list's funded totals)."""
    rows = db.session.execute(
        select(ItemFunding.currency, func.sum(ItemFunding.held_minor))
        .join(BacklogItem, BacklogItem.id == ItemFunding.item_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(Repository.project_id == project_id, state_condition("open"), BacklogItem.hidden.is_(False),
               ItemFunding.held_minor > 0)
        .group_by(ItemFunding.currency).order_by(ItemFunding.currency)).all()
    return [(currency, int(total)) for currency, total in rows]


def presence_of(repository_id: int) -> RepositoryPresence | None:
    """The opt-in row of a repository, or None when it was never turned on."""
    return db.session.scalar(select(RepositoryPresence).where(RepositoryPresence.repository_id == repository_id))


def enabled(repository_id: int) -> bool:
    """The living comment and label are on for the repository."""
    row = presence_of(repository_id)
    return row is not None and row.enabled


def project_repositories(project_id: int) -> list[tuple[Repository, RepositoryPresence | None]]:
    """The project's repositories with their opt-in rows (None: never turned on), by path."""
    repos = db.session.scalars(select(Repository).where(Repository.project_id == project_id)
                               .order_by(Repository.host, Repository.path_key)).all()
    return [(repo, presence_of(repo.id)) for repo in repos]

"""Issue 20 services: funders' e-mails (receipt, refund, what the money paid
for), following items, implementors' "Items for me", firms paid as firms
(payee account, remittance advice, earnings) and the fiscal host's settings.

Every funder or follower e-mail goes through the outbox once per event: a
:class:`~marketplace.roles.models.SentNotice` row keyed by the event and the
person is inserted first (unique key, in a savepoint), and only the call that
inserts it queues the e-mail. A replayed webhook, a second run of a job or two
workers at the same moment therefore send it once. Services flush, never commit.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from marketplace.accounts.models import ForgeIdentity, ImplementorProfile, Organisation, OrganisationMember, User
from marketplace.audit import service as audit
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import (
    BacklogItem,
    ItemFunding,
    ItemLabel,
    ItemLink,
    ItemLinkKind,
    ItemState,
    PullRequest,
    PullRequestState,
)
from marketplace.claims.models import Certification
from marketplace.extensions import db
from marketplace.fiscal_host import fiscal_host
from marketplace.fiscal_host import forget as forget_fiscal_host
from marketplace.forges.models import Repository
from marketplace.money import exponent
from marketplace.notifications import mail
from marketplace.notifications.links import url_for_public
from marketplace.payouts import service as payouts
from marketplace.payouts import signals as payout_signals
from marketplace.payouts.models import Payout, PayoutAccount, PayoutPledge, PayoutRail, PayoutShare
from marketplace.pledges import signals as pledge_signals
from marketplace.pledges.models import Pledge
from marketplace.projects.models import MemberProject
from marketplace.roles.models import FiscalHostSetting, ItemFollow, SentNotice
from marketplace.timeutil import utcnow

# --- once per event -------------------------------------------------------------------


def once(key: str) -> bool:
    """Record that the notice ``key`` (at most 200 characters) is being sent: True
    for the first call for that key, False ever after (the row exists, or another
    session inserted it first)."""
    if db.session.scalar(select(SentNotice.id).where(SentNotice.key == key)) is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(SentNotice(key=key[:200]))
            db.session.flush()
    except IntegrityError:
        return False
    return True


def _send_once(key: str, notice: str, person: User | None, *, headers: dict[str, str] | None = None,
               **context) -> bool:
    """Queue the e-mail ``notice`` to ``person`` (a confirmed address only) once for
    ``key``, with the extra header fields ``headers`` (see :func:`mail.send`)."""
    if person is None or not person.email or person.email_verified_at is None:
        return False
    if not once(key):
        return False
    mail.send(notice, person.email, language=mail.language_of(person), headers=headers, **context)
    return True


# --- the fiscal host -----------------------------------------------------------------


def fiscal_host_setting() -> FiscalHostSetting | None:
    """The fiscal host's settings an admin saved (row 1), or None."""
    return db.session.get(FiscalHostSetting, 1)


def save_fiscal_host(*, legal_name: str, email: str, address: str, bank_instructions: dict[str, str],
                     admin: User) -> FiscalHostSetting:
    """Save what an admin set for the fiscal host (empty text: the environment's
    value applies); ``bank_instructions`` maps ISO 4217 codes to text (empty
    texts dropped). Audited as ``fiscal_host.updated`` with the fields changed."""
    row = db.session.get(FiscalHostSetting, 1, with_for_update=True)
    if row is None:
        row = FiscalHostSetting(id=1)
        db.session.add(row)
    before = {"legal_name": row.legal_name, "email": row.email, "address": row.address,
              "bank_instructions": row.bank_instructions}
    row.legal_name = legal_name.strip() or None
    row.email = email.strip() or None
    row.address = address.strip() or None
    row.bank_instructions = {code.upper(): text.strip() for code, text in bank_instructions.items()
                             if text and text.strip()} or None
    row.updated_at, row.updated_by_id = utcnow(), admin.id
    db.session.flush()
    after = {"legal_name": row.legal_name, "email": row.email, "address": row.address,
             "bank_instructions": row.bank_instructions}
    audit.record("fiscal_host.updated", "fiscal_host", 1, actor=f"user:{admin.id}", actor_user_id=admin.id,
                 details={"changed": sorted(k for k in after if after[k] != before[k])})
    forget_fiscal_host()  # this process reads the new settings at once
    return row


# --- funders: receipts, refunds, what the money paid for ------------------------------


def _legal_name() -> str:
    return fiscal_host()["name"]


def pledge_reference(pledge: Pledge) -> str:
    """The reference a funder quotes about a pledge: the bank transfer's
    reference, else the card payment's id, else ``pledge-<id>``."""
    return pledge.transfer_reference or pledge.payment_intent_id or f"pledge-{pledge.id}"


def receipt(pledge: Pledge) -> bool:
    """E-mail the funder a receipt for a pledge whose money was just held
    (``pledge_receipt``: amount, item, reference, the fiscal host's legal name),
    once per pledge. Returns whether this call queued it."""
    return _send_once(f"receipt:pledge:{pledge.id}", "pledge_receipt", pledge.funder, pledge=pledge,
                      item=pledge.item, reference=pledge_reference(pledge), host=_legal_name(),
                      link=url_for_public("pledges.show", pledge_id=pledge.id))


def refund_receipt(pledge: Pledge) -> bool:
    """E-mail the funder that a refund of their pledge was made (``pledge_refund_receipt``:
    the amount of this refund, the item, the refund's reference, the fiscal host),
    once per refund id (the latest ``pledge.refunded`` audit event of the pledge).
    A move to another item or a lost dispute is no refund: nothing is sent."""
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.object_type == "pledge", AuditEvent.object_id == str(pledge.id),
        AuditEvent.action == "pledge.refunded").order_by(AuditEvent.id.desc()).limit(1))
    if event is None or not (event.details or {}).get("refund_id"):
        return False
    refund_id = str(event.details["refund_id"])
    if db.session.scalar(select(SentNotice.id).where(SentNotice.key == f"refund:{refund_id}"[:200])) is not None:
        return False
    return _send_once(f"refund:{refund_id}", "pledge_refund_receipt", pledge.funder, pledge=pledge,
                      item=pledge.item, amount_minor=int(event.details.get("amount_minor") or 0),
                      reference=refund_id, host=_legal_name(),
                      link=url_for_public("pledges.show", pledge_id=pledge.id))


def _recipient_names(payout: Payout) -> str:
    return ", ".join(share.recipient.display_name for share in payout.shares if share.amount_minor) or "-"


def tell_paid(payout: Payout) -> int:
    """The payout executed: each funder whose pledge it covers is told what
    their money paid for (``pledge_paid``: "your 25.00 paid for PR #123 by …"),
    once per pledge and payout; each follower who is not one of those funders
    gets ``follow_paid``, once per payout. Returns the e-mails queued."""
    item = payout.item
    pull = payout.pull_request
    names = _recipient_names(payout)
    told = 0
    funders = set()
    for covered in db.session.scalars(select(PayoutPledge).where(PayoutPledge.payout_id == payout.id)
                                      .order_by(PayoutPledge.pledge_id)):
        pledge = covered.pledge
        funders.add(pledge.funder_id)
        told += _send_once(f"paid:payout:{payout.id}:pledge:{pledge.id}", "pledge_paid", pledge.funder,
                           pledge=pledge, item=item, payout=payout, pull=pull, amount_minor=covered.amount_minor,
                           names=names, link=url_for_public("payouts.show", payout_id=payout.id))
    for follow in followers(item.id):
        if follow.user_id in funders:
            continue
        unfollow = unfollow_link(follow)
        told += _send_once(f"paid:payout:{payout.id}:follower:{follow.user_id}", "follow_paid", follow.user,
                           headers=mail.unsubscribe_headers(unfollow), item=item, payout=payout, pull=pull,
                           names=names, link=url_for_public("backlog.item", item_id=item.id), unfollow=unfollow)
    return told


def tell_solved(item: BacklogItem) -> int:
    """A merged change solves ``item``: each follower gets ``follow_solved``
    once per item and change, with its one-click unfollow headers
    (:func:`unfollow_link`, RFC 8058). Returns the e-mails queued."""
    pull = item.solved_by
    if pull is None:
        return 0
    told = 0
    for follow in followers(item.id):
        unfollow = unfollow_link(follow)
        told += _send_once(f"solved:item:{item.id}:pr:{pull.id}:follower:{follow.user_id}", "follow_solved",
                           follow.user, headers=mail.unsubscribe_headers(unfollow), item=item, pull=pull,
                           link=url_for_public("backlog.item", item_id=item.id), unfollow=unfollow)
    return told


def connect_signals() -> None:
    """Connect the funders' e-mails to the pledges' and payouts' signals (at app
    setup; connecting twice changes nothing)."""
    pledge_signals.held.connect(_on_held, weak=False)
    pledge_signals.money_left.connect(_on_money_left, weak=False)
    payout_signals.executed.connect(_on_executed, weak=False)
    payout_signals.solved.connect(_on_solved, weak=False)


def _on_held(pledge, **_extra) -> None:
    receipt(pledge)


def _on_money_left(pledge, **_extra) -> None:
    refund_receipt(pledge)


def _on_executed(payout, **_extra) -> None:
    tell_paid(payout)


def _on_solved(item, **_extra) -> None:
    tell_solved(item)


# --- following ------------------------------------------------------------------------


def followers(item_id: int) -> list[ItemFollow]:
    """The item's follows, oldest first."""
    return list(db.session.scalars(select(ItemFollow).where(ItemFollow.item_id == item_id).order_by(ItemFollow.id)))


def follow(item: BacklogItem, user: User) -> bool:
    """``user`` follows ``item``; True when this call started it (following twice changes nothing)."""
    if is_following(item.id, user.id):
        return False
    try:
        with db.session.begin_nested():
            db.session.add(ItemFollow(item_id=item.id, user_id=user.id))
            db.session.flush()
    except IntegrityError:
        return False
    return True


def unfollow(item_id: int, user_id: int) -> bool:
    """Stop following; True when a follow was removed."""
    row = db.session.scalar(select(ItemFollow).where(ItemFollow.item_id == item_id, ItemFollow.user_id == user_id))
    if row is None:
        return False
    db.session.delete(row)
    db.session.flush()
    return True


def is_following(item_id: int, user_id: int) -> bool:
    """Whether ``user_id`` follows ``item_id``."""
    return db.session.scalar(select(exists().where(ItemFollow.item_id == item_id,
                                                   ItemFollow.user_id == user_id))) or False


def _unfollow_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="unfollow-item")


def unfollow_token(item_id: int, user_id: int) -> str:
    """A signed token naming (item, person) for the one-click unfollow link of an
    e-mail; it needs no sign-in and does only that (its own salt)."""
    return _unfollow_serializer().dumps([item_id, user_id])


def read_unfollow_token(token: str) -> tuple[int, int] | None:
    """(item id, user id) of a well-signed unfollow token, else None."""
    try:
        item_id, user_id = _unfollow_serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return int(item_id), int(user_id)


def unfollow_link(follow_row: ItemFollow) -> str:
    """The absolute unfollow link for an e-mail to the follower (its body and its
    ``List-Unsubscribe`` header): GET asks to confirm, POST (one click, RFC 8058,
    no session or CSRF token: the signed token is the authority) unfollows."""
    return url_for_public("roles.unfollow", token=unfollow_token(follow_row.item_id, follow_row.user_id))


# --- implementors: items for me -------------------------------------------------------


def certified_project_ids(user_id: int, at: datetime | None = None) -> tuple[bool, set[int]]:
    """(certified globally?, ids of the projects certifying ``user_id``) at ``at`` (default now)."""
    at = at or utcnow()
    rows = db.session.scalars(select(Certification).where(
        Certification.user_id == user_id, Certification.revoked_at.is_(None),
        Certification.issued_at <= at, Certification.expires_at > at)).all()
    return any(c.project_id is None for c in rows), {c.project_id for c in rows if c.project_id is not None}


def items_for(user: User, *, limit: int = 100) -> dict:
    """Open, funded, visible items for an implementor: ``{"items", "skills",
    "languages", "certified_globally", "projects"}``. An item is kept when one
    of the person's skills is named by its labels or title (case-insensitive,
    within a word: "test" finds "testing"), or one of the programming languages
    of their profile is one of its repository's languages
    (:func:`repository_languages`); every item when they gave neither. Its
    project must certify them (every project when certified globally; every
    project when not certified at all, so the list says why nothing pays yet).
    Most funded first (held money in any currency, minor units summed only
    within a currency: the order is by the largest held amount)."""
    profile = db.session.get(ImplementorProfile, user.id)
    skills = [s.strip().lower() for s in (profile.skills if profile else []) or [] if s and s.strip()]
    languages = [s.strip().lower() for s in (profile.languages if profile else []) or [] if s and s.strip()]
    globally, project_ids = certified_project_ids(user.id)
    held = select(ItemFunding.item_id, func.max(ItemFunding.held_minor).label("held")).where(
        ItemFunding.held_minor > 0).group_by(ItemFunding.item_id).subquery()
    query = (select(BacklogItem).join(held, held.c.item_id == BacklogItem.id)
             .join(Repository, Repository.id == BacklogItem.repository_id)
             .where(BacklogItem.state == ItemState.open, BacklogItem.hidden.is_(False),
                    BacklogItem.deleted_at.is_(None), BacklogItem.solved_by_id.is_(None))
             .order_by(held.c.held.desc(), BacklogItem.id)
             # What the skills and the page read: a fixed number of statements, none per item.
             .options(joinedload(BacklogItem.repository).joinedload(Repository.project),
                      selectinload(BacklogItem.labels), selectinload(BacklogItem.funding)))
    if not globally and project_ids:
        query = query.where(Repository.project_id.in_(project_ids))
    items = list(db.session.scalars(query.limit(limit * 5)))
    if skills or languages:
        spoken = repository_languages({item.repository_id for item in items}) if languages else {}
        wanted = [_words(language) for language in languages]
        items = [item for item in items
                 if _names_skill(item, skills) or _speaks(spoken.get(item.repository_id, set()), wanted)]
    projects = list(db.session.scalars(select(MemberProject).where(MemberProject.id.in_(project_ids))
                                       .order_by(MemberProject.name))) if project_ids else []
    return {"items": items[:limit], "skills": skills, "languages": languages, "certified_globally": globally,
            "projects": projects}


def repository_languages(repository_ids: set[int]) -> dict[int, set[tuple[str, ...]]]:
    """The languages of each repository as sync stores them: the repository
    stores no language of its own, so they are the label names its synced
    issues carry (``python``, ``lang: JavaScript``, ``language/c++``), each as
    its lower-case words (:func:`_words`) without a leading ``lang`` or
    ``language``. ``{repository id: {("javascript",), ("c++",), ("good", "first", "issue"), …}}``;
    a repository whose issues carry no label is absent. One query."""
    if not repository_ids:
        return {}
    rows = db.session.execute(
        select(BacklogItem.repository_id, ItemLabel.name).distinct()
        .join(ItemLabel, ItemLabel.item_id == BacklogItem.id)
        .where(BacklogItem.repository_id.in_(repository_ids), BacklogItem.deleted_at.is_(None)))
    found: dict[int, set[tuple[str, ...]]] = {}
    for repository_id, name in rows:
        words = _words(name)
        if len(words) > 1 and words[0] in _LANGUAGE_PREFIXES:
            words = words[1:]
        found.setdefault(repository_id, set()).add(words)
    return found


_WORD = re.compile(r"[a-z0-9+#]+")
_LANGUAGE_PREFIXES = {"lang", "language"}


def _words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text``; ``+`` and ``#`` belong to a word (C++, C#)."""
    return tuple(_WORD.findall(text.lower()))


def _speaks(labels: set[tuple[str, ...]], wanted: list[tuple[str, ...]]) -> bool:
    """Whether a language (its words) is the whole of one of the labels (after
    ``lang:``): "java" is "lang: Java" but not "javascript"; "c" is "Lang: C" but
    neither "objective-c" nor "topic-c-api", which only "objective-c" and "topic c
    api" are. A set lookup per language, however many labels."""
    return any(language and language in labels for language in wanted)


def _names_skill(item: BacklogItem, skills: list[str]) -> bool:
    labels = [label.name.lower() for label in getattr(item, "labels", []) or []]
    text = " ".join([item.title.lower(), *labels])
    return any(skill in text for skill in skills)


# --- firms paid as firms --------------------------------------------------------------


class FirmError(ValueError):
    """A firm operation refused; the message is for the person."""


def owns(org: Organisation, user: User) -> bool:
    """Whether ``user`` is an accepted owner of ``org``."""
    return any(m.user_id == user.id and m.role == "owner" and m.accepted_at is not None for m in org.members)


def firm_of_payee(user_id: int) -> Organisation | None:
    """The firm whose payee account ``user_id`` is, or None (a person)."""
    return db.session.scalar(select(Organisation).where(Organisation.payee_id == user_id))


def ensure_payee(org: Organisation, *, owner: User, legal_name: str | None = None) -> User:
    """The firm's payee account, made once (under the organisation's row lock) by
    one of its owners: an implementor account named after the firm's legal name
    that cannot sign in and has no address. Payouts, the payout account (Stripe
    Connect of the company, or the manual rail) and the certification of the firm
    are this account's. Raises :class:`FirmError` unless ``org`` is an
    implementor firm and ``owner`` owns it."""
    if org.kind != "implementor":
        raise FirmError("only an implementor firm is paid as a firm")
    if not owns(org, owner):
        raise FirmError("only the firm's owners set how it is paid")
    db.session.get(Organisation, org.id, with_for_update=True, populate_existing=True)
    if legal_name is not None and legal_name.strip():
        org.legal_name = legal_name.strip()[:200]
    if org.payee_id is not None:
        payee = db.session.get(User, org.payee_id)
        payee.display_name = firm_name(org)
        db.session.flush()
        return payee
    payee = User(display_name=firm_name(org), is_implementor=True)
    db.session.add(payee)
    db.session.flush()
    db.session.add(ImplementorProfile(user_id=payee.id, country=org.country, organisation_id=org.id))
    org.payee_id = payee.id
    db.session.flush()
    audit.record("organisation.payee_created", "organisation", org.id, actor=f"user:{owner.id}",
                 actor_user_id=owner.id, details={"payee": payee.id})
    return payee


def firm_name(org: Organisation) -> str:
    """The firm's legal name, else its name."""
    return org.legal_name or org.name


def set_firm_manual_rail(org: Organisation, details: str, *, owner: User) -> PayoutAccount:
    """An owner chooses the manual rail for the firm with the company's bank or
    mobile-money details (up to 2000 characters; admins only see them).
    Raises :class:`FirmError` or ``PayoutError``."""
    payee = ensure_payee(org, owner=owner)
    account = payouts.choose_manual_rail(payee.id, details)
    audit.record("organisation.payout_manual", "organisation", org.id, actor=f"user:{owner.id}",
                 actor_user_id=owner.id)
    return account


@dataclass
class Remittance:
    """One payout share as remittance advice: amounts in minor units of ``currency``."""

    share: PayoutShare
    payout: Payout
    item: BacklogItem
    pull_url: str | None
    pull_number: int | None
    gross_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    rail: str
    reference: str
    paid_on: date | None
    payee_name: str
    country: str | None

    CSV_HEADER = ("payout", "item", "pull_request", "gross", "fee", "net", "currency", "rail", "reference",
                  "date", "legal_name", "country")


def remittance(share: PayoutShare) -> Remittance:
    """The remittance advice of one share. Gross and fee are the share's part of
    the payout's (``gross × amount / net``, the fee the rest, so that gross −
    fee = net exactly); a single-recipient payout shows its own gross and fee.
    The reference is the Stripe transfer id or the fiscal host's transfer
    reference; the name and country are the firm's (legal name) for a firm's
    payee, the person's otherwise."""
    payout = share.payout
    net_total = payout.gross_minor - payout.fee_minor
    if net_total > 0:
        gross = (payout.gross_minor * share.amount_minor + net_total // 2) // net_total
    else:
        gross = share.amount_minor
    firm = firm_of_payee(share.recipient_id)
    if firm is not None:
        name, country = firm_name(firm), firm.country
    else:
        profile = db.session.get(ImplementorProfile, share.recipient_id)
        name, country = share.recipient.display_name, profile.country if profile else None
    pull = payout.pull_request
    paid_on = share.manual_paid_on or (share.paid_at.date() if share.paid_at else None)
    return Remittance(share=share, payout=payout, item=payout.item, pull_url=pull.html_url if pull else None,
                      pull_number=pull.number if pull else None, gross_minor=gross,
                      fee_minor=gross - share.amount_minor, net_minor=share.amount_minor, currency=payout.currency,
                      rail=(share.rail or PayoutRail.stripe).value if share.rail else "-",
                      reference=share.stripe_transfer_id or share.manual_reference or f"payout-{payout.id}",
                      paid_on=paid_on, payee_name=name, country=country)


def may_see_remittance(share: PayoutShare, user: User) -> bool:
    """The recipient, an owner or member of the firm it is the payee of, or an admin."""
    if user.is_admin or share.recipient_id == user.id:
        return True
    firm = firm_of_payee(share.recipient_id)
    return firm is not None and db.session.scalar(select(OrganisationMember.id).where(
        OrganisationMember.organisation_id == firm.id, OrganisationMember.user_id == user.id,
        OrganisationMember.accepted_at.is_not(None))) is not None


def earnings(user_id: int) -> list[Remittance]:
    """Remittance advice of every executed share paid to ``user_id`` (a person or a firm's payee), newest first."""
    shares = db.session.scalars(select(PayoutShare).join(Payout, Payout.id == PayoutShare.payout_id)
                                .where(PayoutShare.recipient_id == user_id, PayoutShare.amount_minor > 0,
                                       Payout.executed_at.is_not(None))
                                .order_by(Payout.executed_at.desc(), PayoutShare.id.desc())).all()
    return [remittance(share) for share in shares]


def remittance_csv(rows: list[Remittance]) -> str:
    """CSV text of remittance advice (header :attr:`Remittance.CSV_HEADER`; amounts
    as decimals in major units with the currency's exponent, dates ISO 8601)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(Remittance.CSV_HEADER)
    for row in rows:
        digits = exponent(row.currency)

        def major(minor: int) -> str:
            whole, part = divmod(minor, 10 ** digits)  # integers only: money is never a float
            return f"{whole}.{part:0{digits}d}" if digits else str(minor)

        writer.writerow([row.payout.id, row.item.title, row.pull_url or "", major(row.gross_minor),
                         major(row.fee_minor), major(row.net_minor), row.currency, row.rail, row.reference,
                         row.paid_on.isoformat() if row.paid_on else "", row.payee_name, row.country or ""])
    return out.getvalue()


# --- the claim page: what makes the merge count ----------------------------------------


def merge_status(claim) -> dict:
    """What makes the claimant's merge count, and where it stands:
    ``{"host", "identities", "linked", "verified", "pull", "seen", "merged"}``:
    the item's forge host; the claimant's forge identities on it (logins);
    whether one is linked and verified (proved by OAuth, matched by numeric
    forge id); the pull request linked to the item (closing it) that one of
    those identities authored, preferring a merged one; whether it was seen
    and whether it is merged."""
    item = claim.item
    host = item.forge_host
    identities = list(db.session.scalars(select(ForgeIdentity).where(
        ForgeIdentity.user_id == claim.claimant_id, ForgeIdentity.host == host).order_by(ForgeIdentity.id)))
    forge_ids = [identity.forge_user_id for identity in identities]
    pull = None
    if forge_ids:
        pulls = list(db.session.scalars(
            select(PullRequest).join(ItemLink, ItemLink.pull_request_id == PullRequest.id)
            .where(ItemLink.item_id == item.id, ItemLink.kind == ItemLinkKind.closes, ItemLink.removed.is_(False),
                   PullRequest.deleted_at.is_(None), PullRequest.author_forge_id.in_(forge_ids))
            .order_by(PullRequest.id)))
        merged = [p for p in pulls if p.state is PullRequestState.merged]
        pull = (merged or pulls or [None])[0]
    return {"host": host, "identities": [identity.login for identity in identities],
            "linked": bool(identities), "verified": any(identity.verified_at for identity in identities),
            "pull": pull, "seen": pull is not None,
            "merged": pull is not None and pull.state is PullRequestState.merged}

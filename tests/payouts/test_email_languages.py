"""E-mails go out in the recipient's language: their account's preference, else
the language of the page where they acted; subjects, bodies and amounts alike."""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.backlog.close_reasons import CloseReason, reason_text
from marketplace.catalogues import catalogue_paths, load
from marketplace.claims import service as claims
from marketplace.notifications import mail, notices
from marketplace.payouts.models import PayoutAccount, PayoutRail
from marketplace.pledges.service import tell_funders_refunded
from marketplace.timeutil import utcnow
from tests.accounts.helpers import PASSWORD, csrf, signup
from tests.payouts.test_email_templates import NOTICES, _context

NBSP, NNBSP = "\u00a0", "\u202f"
LOCALES = ("fr", "es", "pt")


def english_leftovers(text: str, locale: str) -> list[str]:
    """Catalogue strings (long enough to be unambiguous) left in English in ``text``."""
    found = []
    for message in load(catalogue_paths()[locale]):
        if not message.id or isinstance(message.id, tuple) or "%" in message.id or len(message.id) < 14:
            continue
        if message.string and message.string != message.id and message.id in text:
            found.append(message.id)
    return found


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("notice", [n for n in NOTICES if n in {
    "account_exists", "account_verify", "password_reset", "maintainer_invitation",
    "pledge_refund_offered", "pledge_refunded", "refund_failed"}])
def test_every_sent_mail_renders_in_each_language(app, notice, locale):
    with app.test_request_context():
        english = mail.render(notice, "en", **_context())
        subject, body = mail.render(notice, locale, **_context())
    assert subject != english[0]
    assert english_leftovers(subject + "\n" + body, locale) == []


@pytest.mark.parametrize("locale", LOCALES)
def test_every_composed_notice_is_in_the_recipients_language(world, session, locale):
    item = world.issue(402)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=8002)
    ama.preferred_language = world.maintainer.preferred_language = locale
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    claims.approve(claim, maintainer=world.maintainer)
    for kind in notices.CLAIM_KINDS:
        for _to, subject, body in notices.compose("claim", kind, claim.id):
            assert english_leftovers(subject + "\n" + body, locale) == [], kind
    [(_to, subject, _body)] = notices.compose("claim", "approved", claim.id)
    assert subject == {"fr": "Votre candidature a été approuvée", "es": "Su candidatura fue aprobada",
                       "pt": "Sua candidatura foi aprovada"}[locale]


def test_each_recipient_gets_their_own_language_and_money_written_their_way(world, session):
    item = world.issue(403)
    world.fund(item, 3000)  # 30.00 USD; the project's fee is 10%
    ama = world.implementor("ama403@example.org", github_id=8403)
    ama.preferred_language, world.maintainer.preferred_language = "fr", "pt"
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    claims.approve(claim, maintainer=world.maintainer)
    [(to, subject, body)] = notices.compose("claim", "requested", claim.id)
    assert to == "maintainer@example.org"
    assert subject.startswith("Nova candidatura em")
    assert f"US${NBSP}30,00 em custódia, cerca de US${NBSP}27,00 para o implementador" in body
    [(to, subject, body)] = notices.compose("claim", "approved", claim.id)
    assert to == "ama403@example.org"
    assert subject == "Votre candidature a été approuvée"
    assert f"30,00{NBSP}$US en séquestre, environ 27,00{NBSP}$US pour vous." in body


def test_without_a_preference_the_language_of_the_last_page_where_they_acted_is_used(client, world, session):
    item = world.issue(404)
    signup(client, "ama404@example.org", "Ama", implementor=True)  # no cookie, no Accept-Language: English
    ama = session.scalar(select(User).where(User.email == "ama404@example.org"))
    assert (ama.preferred_language, ama.last_language) == (None, "en")
    client.set_cookie("lang", "es")  # she saves her account page in Spanish
    response = client.post("/account", data={"form": "roles", "roles-display_name": "Ama", "roles-is_implementor": "y",
                                             "roles-csrf_token": csrf(client, "/account")})
    assert response.status_code == 303
    session.refresh(ama)
    assert (ama.preferred_language, ama.last_language) == (None, "es")
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    claims.approve(claim, maintainer=world.maintainer)  # e-mails composed later, by a job
    [(_to, subject, _body)] = notices.compose("claim", "approved", claim.id)
    assert subject == "Su candidatura fue aprobada"
    # The maintainer chose no language and acted on no page here: the default.
    [(_to, subject, _body)] = notices.compose("claim", "requested", claim.id)
    assert subject.startswith("New claim on ")
    ama.preferred_language = "pt"  # a choice, once made, wins over the page
    [(_to, subject, _body)] = notices.compose("claim", "approved", claim.id)
    assert subject == "Sua candidatura foi aprovada"


def test_refund_notices_give_the_reason_in_each_funders_language(app, world, session):
    item = world.issue(405)
    world.fund(item, 2500)
    world.funder.preferred_language = "fr"
    from sqlalchemy import func

    from marketplace.notifications.models import OutboxKind, OutboxMessage

    # The e-mail is an outbox row (issue 23), rendered when it was written; rows
    # committed by tests that served the app for real are older.
    before = session.scalar(select(func.max(OutboxMessage.id))) or 0
    with app.test_request_context("/?lang=pt"):  # an admin acting in Portuguese
        assert tell_funders_refunded(item, lambda: reason_text(CloseReason.deleted)) == 1
    [sent] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == OutboxKind.mail,
                                                         OutboxMessage.id > before)).all()
    to, subject, body = sent.recipient, sent.subject, sent.body
    assert (to, subject) == ("funder@example.org", "Votre contribution est remboursée")
    assert "supprimé sur la forge" in body and "deleted on the forge" not in body


def test_the_sign_up_email_is_in_the_language_of_the_sign_up_page(client, session, smtp_server):
    client.set_cookie("lang", "fr")
    client.post("/signup", data={"display_name": "Awa", "email": "awa@example.org", "password": PASSWORD,
                                 "csrf_token": csrf(client, "/signup")})
    for _ in range(50):
        if smtp_server:
            break
        time.sleep(0.05)
    [message] = smtp_server
    assert message["Subject"] == "Confirmez votre adresse e-mail pour Backlog Commons"
    assert re.search(r"http://localhost/verify/\S+", message.get_content())
    user = session.scalar(select(User).where(User.email == "awa@example.org"))
    assert (user.preferred_language, user.last_language) == (None, "fr")  # the page's language, not a choice


def test_dates_in_e_mails_are_written_the_recipients_way(world, session):
    from datetime import date

    item = world.issue(406)
    ama = world.implementor("ama406@example.org", github_id=8406)
    claim = claims.request_claim(item, ama, plan="Plan", estimate_days=3, deadline=utcnow().date() + timedelta(days=3))
    claim.deadline = date(2026, 12, 8)
    claims.approve(claim, maintainer=world.maintainer)
    expected = {"en": "Your deadline is December 8, 2026 (UTC).", "fr": "Votre échéance est le 8 décembre 2026",
                "es": "Su plazo es el 8 de diciembre de 2026 (UTC).", "pt": "Seu prazo é 8 de dezembro de 2026 (UTC)."}
    for locale, words in expected.items():
        ama.preferred_language = locale
        [(_to, _subject, body)] = notices.compose("claim", "approved", claim.id)
        assert words in body, (locale, body)

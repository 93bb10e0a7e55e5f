"""Races on real PostgreSQL sessions (real commits; rows deleted afterwards)."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import delete, func, select

from marketplace.accounts.models import ForgeIdentity, User
from marketplace.audit.models import AuditEvent
from tests.accounts.helpers import signup, start_connect


def _status(app, call):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        return call().status_code
    except Exception:  # noqa: BLE001  (the 500 page failing too is still a 500)
        return 500


def _cleanup(app, emails):
    from marketplace.extensions import db

    with app.app_context():
        ids = db.session.scalars(select(User.id).where(User.email.in_(emails))).all()
        db.session.execute(delete(AuditEvent).where(AuditEvent.actor.in_([f"user:{i}" for i in ids])))
        db.session.execute(delete(User).where(User.id.in_(ids)))
        db.session.commit()


def _run_together(calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres
def test_two_accounts_connecting_one_github_id_at_once_get_a_clear_refusal(app, oauth_github, monkeypatch):
    from marketplace.accounts import oauth

    tag = uuid.uuid4().hex[:8]
    emails = [f"race-a-{tag}@example.org", f"race-b-{tag}@example.org"]
    forge_id = 900_000_000 + int(tag, 16) % 1_000_000
    barrier = threading.Barrier(2)

    def fetch_identity(provider, code, redirect_uri):
        barrier.wait()  # both callbacks have passed the state check; now both link
        return forge_id, "contested"

    monkeypatch.setattr(oauth, "fetch_identity", fetch_identity)
    try:
        clients, states = [], []
        for email in emails:
            c = app.test_client()
            signup(c, email)
            states.append(start_connect(c))
            clients.append(c)
        codes = _run_together([
            (lambda c=c, s=s: _status(app, lambda: c.get("/connect/github/callback",
                                                         query_string={"code": "x", "state": s})))
            for c, s in zip(clients, states, strict=True)
        ])
        from marketplace.extensions import db

        with app.app_context():
            linked = db.session.scalar(select(func.count()).select_from(ForgeIdentity).where(
                ForgeIdentity.forge_user_id == forge_id))
        assert linked == 1
        assert sorted(codes) == [302, 400], codes
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
        _cleanup(app, emails)


@pytest.mark.postgres
def test_two_signups_with_one_address_at_once_make_one_account_and_one_answer(app):
    tag = uuid.uuid4().hex[:8]
    emails = [f"twin-{tag}@example.org", f"TWIN-{tag}@example.org"]
    try:
        results = []
        for _ in range(5):  # the window is narrow; a few rounds
            _cleanup(app, emails)
            clients = [app.test_client() for _ in emails]
            # fetch CSRF tokens first so that only the POSTs race
            from tests.accounts.helpers import PASSWORD, csrf

            tokens = [csrf(c, "/signup") for c in clients]
            codes = _run_together([
                (lambda c=c, e=e, t=t: _status(app, lambda: c.post("/signup", data={
                    "display_name": "Twin", "email": e, "password": PASSWORD, "csrf_token": t})))
                for c, e, t in zip(clients, emails, tokens, strict=True)
            ])
            results.append(sorted(codes))
            from marketplace.extensions import db

            with app.app_context():
                accounts = db.session.scalar(select(func.count()).select_from(User).where(
                    User.email.in_(emails)))
            assert accounts == 1
        # The same answer for both (no error, and nothing that tells an address has an account).
        assert all(r == [303, 303] for r in results), results
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
        _cleanup(app, emails)


@pytest.mark.postgres
def test_one_state_used_by_two_concurrent_callbacks_links_once(app, oauth_github):
    tag = uuid.uuid4().hex[:8]
    emails = [f"state-{tag}@example.org"]
    try:
        client = app.test_client()
        signup(client, emails[0])
        state = start_connect(client)
        for i, code in enumerate(("c1", "c2")):
            oauth_github.oauth_codes[f"{code}-{tag}"] = {"id": 800_000_000 + i, "login": f"u{i}"}
        codes = _run_together([
            (lambda code=code: _status(app, lambda: client.get("/connect/github/callback", query_string={
                "code": f"{code}-{tag}", "state": state})))
            for code in ("c1", "c2")
        ])
        from marketplace.extensions import db

        with app.app_context():
            linked = db.session.scalar(select(func.count()).select_from(ForgeIdentity).join(User).where(
                User.email == emails[0]))
        assert linked == 1 and sorted(codes) == [302, 400], (linked, codes)
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
        _cleanup(app, emails)


@pytest.mark.postgres
def test_reset_link_is_not_built_from_an_attackers_host_header(database_url, app, smtp_server):
    """Default config (TRUSTED_HOSTS and SERVER_NAME unset): the reset e-mail's link
    takes its host from the request, so an attacker who asks for a reset of the
    victim's address with ``Host: evil.example`` gets the victim to send the token
    to evil.example. Real commits; rows deleted afterwards."""
    import time

    from tests.conftest import make_app

    tag = uuid.uuid4().hex[:8]
    email = f"victim-{tag}@example.org"
    plain = make_app(database_url, SERVER_NAME=None, MAIL_SERVER=app.config["MAIL_SERVER"],
                     MAIL_PORT=app.config["MAIL_PORT"])
    try:
        signup(plain.test_client(), email)
        attacker = plain.test_client()

        import re

        page = attacker.get("/reset", headers={"Host": "evil.example"}).get_data(as_text=True)
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
        sent = attacker.post("/reset", data={"email": email, "csrf_token": token}, headers={"Host": "evil.example"})
        assert sent.status_code == 303
        for _ in range(100):
            if len(smtp_server) >= 2:
                break
            time.sleep(0.05)
        assert smtp_server[-1]["Subject"] == "Reset your Backlog Commons password"
        body = smtp_server[-1].get_content()
        assert "evil.example" not in body, body
    finally:
        _cleanup(plain, [email])
        with plain.app_context():
            from marketplace.extensions import db

            db.engine.dispose()

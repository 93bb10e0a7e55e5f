"""Admin forms: a too-long value is a field error that keeps what was typed and
changes nothing; the admin role is granted and withdrawn explicitly, audited,
never from the last admin (also when two admins withdraw each other at once)."""
import threading
import time

import pytest
from sqlalchemy import delete, func, select

from marketplace.accounts.models import User
from marketplace.accounts.roles import RoleError, withdraw_admin
from marketplace.admin.forms import MAX_EMAIL, MAX_REFUND_REASON
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import BacklogItem
from marketplace.extensions import db
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.projects.models import ProjectMaintainer
from tests.admin.test_admin import csrf_from, make_user, sign_in_as


def _admin_client(client, session, email="host@example.org"):
    host = make_user(session, email, admin=True)
    sign_in_as(client, host)
    return host, csrf_from(client.get("/admin/users").get_data(as_text=True))


def _audited(session, action: str, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.object_id == str(user_id)))


def test_a_too_long_maintainer_email_is_a_field_error_that_keeps_it_and_changes_nothing(client, session):
    _, token = _admin_client(client, session)
    person = make_user(session, "someone@example.org", admin=False)
    typed = "someone@example.org" + "x" * MAX_EMAIL
    response = client.post("/admin/projects/odk/maintainers", data={"csrf_token": token, "email": typed})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'value="{typed}"' in html and 'aria-invalid="true"' in html and "field-error" in html
    assert session.scalar(select(func.count()).select_from(ProjectMaintainer)
                          .where(ProjectMaintainer.user_id == person.id)) == 0


def test_a_too_long_refund_reason_is_a_field_error_that_keeps_it_and_refunds_nothing(client, session):
    _, token = _admin_client(client, session)
    funder = make_user(session, "funder@example.org", admin=False)
    item = session.scalar(select(BacklogItem).where(BacklogItem.number == 1887))
    pledge = pledges.create(item, funder.id, Money(4000, "USD"), rail=Rail.bank_transfer, actor="test")
    session.flush()
    pledges.confirm_transfer(pledge.id, Money(4000, "USD"), reference="BANK-1", received_on="2026-11-30",
                             actor="test")
    session.flush()
    typed = "r" * (MAX_REFUND_REASON + 1)
    response = client.post(f"/admin/pledges/{pledge.id}/refund", data={
        "csrf_token": token, "amount": "10.00", "reason": typed, "seen_refunded": "0"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'value="{typed}"' in html and f'id="rr-{pledge.id}-errors"' in html
    session.expire_all()
    refreshed = session.get(Pledge, pledge.id)
    assert (refreshed.state, refreshed.refunded_minor) == (PledgeState.held, 0)


def test_granting_and_withdrawing_admin_is_explicit_and_audited(client, session):
    host, token = _admin_client(client, session)
    person = make_user(session, "second@example.org", admin=False)
    url = f"/admin/users/{person.id}/admin"
    assert client.post(url, data={"csrf_token": token, "role": "grant"}).status_code == 303
    assert session.get(User, person.id).is_admin
    # The same form again changes nothing more (it names the role, it does not toggle).
    assert client.post(url, data={"csrf_token": token, "role": "grant"}).status_code == 303
    assert session.get(User, person.id).is_admin
    assert _audited(session, "user.admin_granted", person.id) == 1
    assert client.post(url, data={"csrf_token": token, "role": "withdraw"}).status_code == 303
    assert not session.get(User, person.id).is_admin
    assert _audited(session, "user.admin_withdrawn", person.id) == 1
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.admin_withdrawn",
                                                    AuditEvent.object_id == str(person.id)))
    assert event.actor == f"user:{host.id}" and event.actor_user_id == host.id


def test_a_role_form_without_a_choice_changes_nothing(client, session):
    _, token = _admin_client(client, session)
    person = make_user(session, "second@example.org", admin=False)
    for data in ({"csrf_token": token}, {"csrf_token": token, "role": "toggle"}):
        assert client.post(f"/admin/users/{person.id}/admin", data=data).status_code == 303
    assert not session.get(User, person.id).is_admin
    assert _audited(session, "user.admin_granted", person.id) == 0


def test_the_last_admin_keeps_the_role(client, session):
    host = make_user(session, "host@example.org", admin=True)
    other_admins = session.scalars(select(User).where(User.is_admin.is_(True), User.id != host.id)).all()
    for other in other_admins:
        other.is_admin = False
    session.flush()
    with pytest.raises(RoleError):
        withdraw_admin(host, actor="test")
    assert session.get(User, host.id).is_admin
    assert _audited(session, "user.admin_withdrawn", host.id) == 0


@pytest.mark.postgres
def test_two_admins_withdrawing_each_other_at_once_leave_one_admin(app):
    """Two sessions, each withdrawing the other of the two last admins: the row lock
    makes the second wait for the first and then count one admin, so it refuses."""
    with app.app_context():
        existing = db.session.scalar(select(func.count()).select_from(User).where(User.is_admin.is_(True)))
        assert existing == 0, "the committed test database holds no admin"
        ids = []
        for email in ("race-a@example.org", "race-b@example.org"):
            user = User(display_name=email.split("@")[0], is_admin=True)
            user.set_email(email)
            db.session.add(user)
            db.session.flush()
            ids.append(user.id)
        db.session.commit()
        db.session.remove()
    started = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def withdraw(name: str, actor_id: int, target_id: int, delay: float) -> None:
        with app.app_context():
            try:
                started.wait()
                time.sleep(delay)
                changed = withdraw_admin(db.session.get(User, target_id), actor=f"user:{actor_id}",
                                         actor_user_id=actor_id)
                if name == "first":
                    time.sleep(0.5)  # hold the locks while the other session asks for them
                db.session.commit()
                outcomes[name] = "withdrawn" if changed else "unchanged"
            except RoleError:
                db.session.rollback()
                outcomes[name] = "refused"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=withdraw, args=("first", ids[0], ids[1], 0.0)),
               threading.Thread(target=withdraw, args=("second", ids[1], ids[0], 0.2))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert outcomes == {"first": "withdrawn", "second": "refused"}
        with app.app_context():
            assert db.session.scalars(select(User.id).where(User.is_admin.is_(True))).all() == [ids[0]]
            db.session.remove()
    finally:
        with app.app_context():
            db.session.execute(delete(AuditEvent).where(AuditEvent.object_type == "user_account",
                                                        AuditEvent.object_id.in_([str(i) for i in ids])))
            db.session.execute(delete(User).where(User.id.in_(ids)))
            db.session.commit()
            db.session.remove()


def test_the_users_cli_grants_and_withdraws_admin_but_not_from_the_last(runner, session):
    for other in session.scalars(select(User).where(User.is_admin.is_(True))):
        other.is_admin = False
    first = make_user(session, "first@example.org", admin=True)
    second = make_user(session, "second@example.org", admin=False)
    result = runner.invoke(args=["users", "grant-admin", "second@example.org"])
    assert result.exit_code == 0, result.output
    assert session.get(User, second.id).is_admin and _audited(session, "user.admin_granted", second.id) == 1
    assert runner.invoke(args=["users", "withdraw-admin", "first@example.org"]).exit_code == 0
    assert not session.get(User, first.id).is_admin
    result = runner.invoke(args=["users", "withdraw-admin", "second@example.org"])
    assert result.exit_code == 1 and "last admin" in result.output
    assert session.get(User, second.id).is_admin and _audited(session, "user.admin_withdrawn", second.id) == 0
    assert runner.invoke(args=["users", "grant-admin", "nobody@example.org"]).exit_code == 2


@pytest.mark.parametrize("page, shown, older", [("1", 50, True), ("2", 5, False), ("0", 50, True),
                                                ("100001", 50, True), ("999", 0, False), ("x", 50, True)])
def test_admin_lists_page_by_fifty_within_the_page_limits(client, session, page, shown, older):
    from marketplace.audit import service as audit

    _admin_client(client, session)
    for number in range(55):
        audit.record("test.paging", "thing", number, actor="test:paging")
    session.flush()
    html = client.get("/admin/audit", query_string={"q": "test.paging", "page": page}).get_data(as_text=True)
    assert "55 results" in html
    assert html.count("test:paging") == shown
    assert ('rel="next"' in html) is older


@pytest.mark.parametrize("path", ["/admin/users", "/admin/organisations", "/admin/audit", "/admin/projects"])
def test_an_admin_search_over_200_characters_is_refused_not_shortened(client, session, path):
    _admin_client(client, session)
    assert client.get(path, query_string={"q": "a" * 200}).status_code == 200
    refused = client.get(path, query_string={"q": "a" * 201})
    assert refused.status_code == 400
    assert "A search is at most 200 characters." in refused.get_data(as_text=True)

"""Admin pages: who may see them, delivery replay, sync progress; signing in."""
import re

import pytest
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.forges.models import SyncRun
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_github

PASSWORD = "correct horse battery staple"


def make_user(session, email: str, *, admin: bool) -> User:
    user = User(display_name=email.split("@")[0], is_admin=admin)
    user.set_email(email)
    user.set_password(PASSWORD)
    session.add(user)
    session.flush()
    return user


def sign_in_as(client, user: User) -> None:
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
        flask_session["_fresh"] = True


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


@pytest.mark.parametrize("path", ["/admin/", "/admin/deliveries", "/admin/sync"])
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", ["/admin/", "/admin/deliveries", "/admin/sync"])
def test_people_who_are_not_admins_get_403(client, session, path):
    sign_in_as(client, make_user(session, "funder@example.org", admin=False))
    assert client.get(path).status_code == 403


def test_sign_in_with_the_form_and_follow_a_local_next(client, session):
    make_user(session, "host@example.org", admin=True)
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/login?next=/admin/sync", data={
        "email": "HOST@example.org", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/sync"
    assert client.get("/admin/sync").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/p", "//evil.example", "/\\evil.example", "////evil.example"])
def test_sign_in_never_follows_next_off_site(client, session, target):
    make_user(session, "host@example.org", admin=True)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target}, data={
        "email": "host@example.org", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_wrong_password_is_refused(client, session):
    make_user(session, "host@example.org", admin=True)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "host@example.org", "password": "nope", "csrf_token": token})
    assert response.status_code == 400
    assert "The e-mail address or the password is not right." in response.get_data(as_text=True)


def test_replay_applies_a_delivery_once_its_repository_joined(client, session):
    post_github(client, "issues", payload("github/webhooks/issues/opened.json"), "late-repo")
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "late-repo"))
    assert delivery.status is DeliveryStatus.ignored
    make_repository("Codertocat", "Hello-World")
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    page = client.get("/admin/deliveries?status=ignored").get_data(as_text=True)
    assert "late-repo" in page and "repository not in the commons" in page
    response = client.post(f"/admin/deliveries/{delivery.id}/replay", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    session.refresh(delivery)
    assert delivery.status is DeliveryStatus.processed
    assert delivery.attempts == 2
    assert "Delivery late-repo was queued again." in client.get("/admin/deliveries").get_data(as_text=True)


def test_replay_without_the_csrf_token_is_refused(client, session):
    post_github(client, "ping", payload("github/webhooks/ping/ping.json"), "ping-1")
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "ping-1"))
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    assert client.post(f"/admin/deliveries/{delivery.id}/replay").status_code == 400
    assert session.get(WebhookDelivery, delivery.id).attempts == 1


def test_sync_page_shows_progress_waiting_and_giving_up(app, client, session, github_forge):
    from jobs.sync import sync_repository
    from tests.forges.fake_forge import github_issue

    repo = make_repository("org-a", "repo-x")
    github_forge.repos[("org-a", "repo-x")] = {
        "id": 77, "default_branch": "main", "pulls": [],
        "issues": [github_issue("org-a", "repo-x", 1, updated_at="2026-01-01T00:00:00Z")],
    }
    github_forge.fail("/repos/org-a/repo-x/issues", 403, {"Retry-After": "60"}, {"message": "slow down"})
    waiting = sync_repository(repo.id, full=True)
    github_forge.fail("/repos/org-a/repo-x/issues", 502, times=100)
    app.config["SYNC_MAX_ATTEMPTS"], previous = 1, app.config["SYNC_MAX_ATTEMPTS"]
    try:
        failed = sync_repository(repo.id, full=True)
    finally:
        app.config["SYNC_MAX_ATTEMPTS"] = previous
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    html = client.get("/admin/sync").get_data(as_text=True)
    assert f"<td>{waiting} (full)</td>" in html and "waiting until" in html
    assert "gave up after 1 attempts: 502 from the forge" in html
    assert session.get(SyncRun, failed).status.value == "failed"


def test_sync_now_queues_a_run(client, session, github_forge):
    repo = make_repository("org-a", "repo-x")
    github_forge.repos[("org-a", "repo-x")] = {"id": 77, "default_branch": "main", "pulls": [], "issues": []}
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    token = csrf_from(client.get("/admin/sync").get_data(as_text=True))
    response = client.post(f"/admin/sync/{repo.id}", data={"csrf_token": token, "full": "1"})
    assert response.status_code == 303
    run = session.scalars(select(SyncRun).where(SyncRun.repository_id == repo.id)).one()
    assert run.full is True and run.status.value == "done"  # in-process: ran after the commit


def test_create_admin_command(runner, session):
    result = runner.invoke(args=["users", "create-admin", "host@example.org", "--password", "long enough password"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "host@example.org"))
    assert user.is_admin and user.check_password("long enough password")
    assert user.password_hash.startswith("scrypt:")
    again = runner.invoke(args=["users", "create-admin", "host@example.org", "--password", "long enough password"])
    assert again.exit_code == 2 and "exists already" in again.output
    short = runner.invoke(args=["users", "create-admin", "x@example.org", "--password", "short"])
    assert short.exit_code == 2


def test_create_admin_reads_the_password_from_the_environment_for_scripts(runner, session):
    result = runner.invoke(args=["users", "create-admin", "ops@example.org"],
                           env={"BACKLOG_ADMIN_PASSWORD": "a password from the environment"})
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "ops@example.org"))
    assert user.is_admin and user.check_password("a password from the environment")
    assert "BACKLOG_ADMIN_PASSWORD" in runner.invoke(args=["users", "create-admin", "--help"]).output


def test_item_page_lists_pull_requests_and_an_admin_links_and_unlinks_by_hand(client, session):
    from marketplace.backlog.service import find_item
    from tests.webhooks.test_github_webhooks import _issue, _pull

    make_repository("Codertocat", "Hello-World")
    item = _issue(client, 591)
    post_github(client, "pull_request", _pull(20, "See #591 for context", merged=True))
    html = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert "Codertocat/Hello-World#20" in html and "mentions this item" in html
    assert find_item("github.com", 700591).solved_by_id is None

    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    token = csrf_from(client.get(f"/items/{item.id}").get_data(as_text=True))
    response = client.post(f"/items/{item.id}/links", data={"csrf_token": token, "number": "20"})
    assert response.status_code == 303
    solved = find_item("github.com", 700591)
    assert solved.solved_by.number == 20
    api = client.get(f"/api/v1/items/{item.id}").get_json()
    assert api["solved_by"] == {"repository": "Codertocat/Hello-World", "number": 20,
                                "url": "https://github.com/Codertocat/Hello-World/pull/20",
                                "merged_at": "2019-05-15T15:20:40Z"}
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert "Solved by Codertocat/Hello-World#20" in page and "closes this item" in page

    link_id = int(re.search(r"/links/(\d+)/remove", page).group(1))
    client.post(f"/links/{link_id}/remove", data={"csrf_token": token})
    assert find_item("github.com", 700591).solved_by_id is None
    # The pull request is edited on the forge: sync does not bring the link back.
    post_github(client, "pull_request", _pull(20, "See #591 for context, edited", merged=True))
    assert find_item("github.com", 700591).solved_by_id is None
    assert "No pull request refers to this item yet." in client.get(f"/items/{item.id}").get_data(as_text=True)


def test_linking_an_unknown_pull_request_number_changes_nothing(client, session):
    from tests.webhooks.test_github_webhooks import _issue

    make_repository("Codertocat", "Hello-World")
    item = _issue(client, 591)
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    token = csrf_from(client.get(f"/items/{item.id}").get_data(as_text=True))
    response = client.post(f"/items/{item.id}/links", data={"csrf_token": token, "number": "999"},
                           follow_redirects=True)
    assert "There is no pull request with that number in Codertocat/Hello-World." in response.get_data(as_text=True)
    assert session.get(type(item), item.id).solved_by_id is None


def test_a_too_long_pull_request_number_is_refused_with_a_field_message_and_links_nothing(client, session):
    from tests.webhooks.test_github_webhooks import _issue

    make_repository("Codertocat", "Hello-World")
    item = _issue(client, 591)
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    token = csrf_from(client.get(f"/items/{item.id}").get_data(as_text=True))
    response = client.post(f"/items/{item.id}/links", data={"csrf_token": token, "number": "2" * 13})
    assert response.status_code == 303 and response.headers["Location"] == f"/items/{item.id}"
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert "Pull request number: Field cannot be longer than 12 characters." in page
    assert session.get(type(item), item.id).solved_by_id is None

"""The local forge (a stand-in for GitHub) driven against the real app: its
OAuth flow stores the forge's numeric id, its merges reach the webhook
endpoint signed as GitHub signs them and pay the claimant's proposal, and
its state survives a restart."""
from __future__ import annotations

import http.client
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select

from marketplace.accounts.models import ForgeIdentity, User
from marketplace.backlog.models import PullRequest
from marketplace.payouts.models import PayoutState
from marketplace.standins import LOCAL_OAUTH_CLIENT_ID
from marketplace.standins.forge import LOCAL_OAUTH_CLIENT_SECRET, ForgeError, LocalForge
from tests.accounts.helpers import csrf, signup
from tests.conftest import GITHUB_SECRET
from tests.payouts.helpers import World


def _through(client):
    """A ``send`` for the forge that posts its deliveries through the app's test client."""
    def send(url: str, body: bytes, headers: dict) -> tuple[int, str]:
        response = client.post(urlsplit(url).path, data=body, headers=headers)
        return response.status_code, response.get_data(as_text=True)
    return send


def _request(forge: LocalForge, method: str, path: str, form: dict | None = None, headers: dict | None = None):
    """One HTTP request to the forge (redirects not followed): (status, headers, body)."""
    host, port = urlsplit(forge.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = urlencode(form).encode() if form is not None else None
    sent = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    connection.request(method, path, body=body, headers=dict(sent, **(headers or {})))
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read().decode())
    connection.close()
    return answer


@pytest.fixture
def forge():
    server = LocalForge()
    yield server
    server.stop()


@pytest.fixture
def forge_app(app, forge, monkeypatch):
    """The app pointed at the local forge for OAuth, as ``make run`` points it."""
    for key, value in forge.app_config(GITHUB_SECRET).items():
        monkeypatch.setitem(app.config, key, value)
    return app


def test_connect_github_through_the_local_forge_stores_its_numeric_id(forge_app, forge, client, session):
    signup(client, "ama@example.org", "Ama Mensah", implementor=True)
    started = client.post("/connect/github", data={"csrf_token": csrf(client, "/account")})
    authorize = urlsplit(started.headers["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == forge.url
    assert authorize.path == "/login/oauth/authorize"
    status, _, page = _request(forge, "GET", f"{authorize.path}?{authorize.query}")
    assert status == 200 and "Local stand-in for GitHub" in page
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert query["client_id"] == LOCAL_OAUTH_CLIENT_ID

    status, headers, _ = _request(forge, "POST", "/login/oauth/authorize", dict(query, login="ama-codes"))
    assert status == 303
    back = urlsplit(headers["Location"])
    assert parse_qs(back.query)["state"] == [query["state"]]
    callback = client.get(f"{back.path}?{back.query}")

    assert callback.status_code == 302
    user = session.scalar(select(User).where(User.email == "ama@example.org"))
    identity = session.scalar(select(ForgeIdentity).where(ForgeIdentity.user_id == user.id))
    assert (identity.host, identity.forge_user_id, identity.login) == (
        "github.com", forge.authorize("ama-codes"), "ama-codes")


def test_the_same_login_keeps_its_id_and_a_bad_one_is_refused(forge):
    first = forge.authorize("kofi")
    assert forge.authorize("Kofi") == first != forge.authorize("ama")
    with pytest.raises(ForgeError):
        forge.authorize("-kofi")
    status, _, page = _request(forge, "POST", "/login/oauth/authorize", {
        "client_id": LOCAL_OAUTH_CLIENT_ID, "redirect_uri": "http://localhost/cb", "state": "s", "login": "a--b"})
    assert status == 400 and "letters, digits or single hyphens" in page


def test_a_code_is_exchanged_once_and_only_with_the_local_client_secret(forge):
    code = forge.grant_code("kofi", LOCAL_OAUTH_CLIENT_ID, "http://localhost/cb")
    refused = forge.exchange_code(code, LOCAL_OAUTH_CLIENT_ID, "guess", "http://localhost/cb")
    assert refused["error"] == "incorrect_client_credentials"
    token = forge.exchange_code(code, LOCAL_OAUTH_CLIENT_ID, LOCAL_OAUTH_CLIENT_SECRET, "http://localhost/cb")
    assert token["token_type"] == "bearer"
    again = forge.exchange_code(code, LOCAL_OAUTH_CLIENT_ID, LOCAL_OAUTH_CLIENT_SECRET, "http://localhost/cb")
    assert again["error"] == "bad_verification_code"
    status, _, body = _request(forge, "GET", "/user", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert status == 200
    assert (json.loads(body)["login"], json.loads(body)["id"]) == ("kofi", forge.authorize("kofi"))
    assert _request(forge, "GET", "/user", headers={"Authorization": "Bearer nope"})[0] == 401


def _funded_claimed_item(world: World, github_id: int):
    implementor = world.implementor("kofi@example.org", github_id=github_id)
    item = world.issue(12)
    world.fund(item, 10_000)
    world.claim(item, implementor)
    return implementor, item


def test_a_merge_on_the_local_forge_proposes_the_payout_to_the_claimant(session, client):
    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 12}})
    try:
        implementor, item = _funded_claimed_item(world, forge.authorize("kofi"))
        number = forge.open_pull_request("Codertocat/Hello-World", 12, "kofi")
        assert number == 13  # above every number the app holds: GitHub numbers issues and pulls together
        assert forge.merge_pull_request("Codertocat/Hello-World", number) == 202
    finally:
        forge.stop()

    assert [(d["action"], d["status"]) for d in forge.deliveries] == [("opened", 202), ("closed", 202)]
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == world.repo.id,
                                                    PullRequest.number == 13))
    assert (pull.state.value, pull.author_forge_id) == ("merged", forge.authorize("kofi"))
    session.refresh(item)
    assert item.solved_by_id == pull.id
    [payout] = world.payouts_of(item)
    assert (payout.state, payout.suggested_recipient_id, payout.pull_request_id) == (
        PayoutState.proposed, implementor.id, pull.id)
    assert [share.recipient_id for share in payout.shares] == [implementor.id]


def test_a_pull_request_closed_unmerged_on_the_local_forge_proposes_nothing(session, client):
    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 12}})
    try:
        _, item = _funded_claimed_item(world, forge.authorize("kofi"))
        number = forge.open_pull_request("Codertocat/Hello-World", 12, "kofi")
        assert forge.close_pull_request("Codertocat/Hello-World", number) == 202
        with pytest.raises(ForgeError):
            forge.merge_pull_request("Codertocat/Hello-World", number)
    finally:
        forge.stop()
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == world.repo.id,
                                                    PullRequest.number == number))
    assert pull.state.value == "closed"
    assert world.payouts_of(item) == []


def test_a_delivery_signed_with_another_secret_is_refused_by_the_app(session, client):
    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret="not-the-app-secret",
                       send=_through(client))
    try:
        world.issue(12)
        number = forge.open_pull_request("Codertocat/Hello-World", 12, "kofi")
    finally:
        forge.stop()
    assert forge.deliveries[-1]["status"] == 401
    assert session.scalar(select(PullRequest).where(PullRequest.repository_id == world.repo.id,
                                                    PullRequest.number == number)) is None


def test_the_forge_pages_open_and_merge_a_pull_request(session, client):
    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 12}})
    try:
        _funded_claimed_item(world, forge.authorize("kofi"))
        status, _, page = _request(forge, "GET", "/Codertocat/Hello-World/issues/12")
        assert status == 200 and "Local stand-in for GitHub" in page and "Fixes #12" in page
        status, headers, _ = _request(forge, "POST", "/Codertocat/Hello-World/pulls",
                                      {"issue": "12", "author": "kofi", "title": "Count the visits"})
        assert (status, headers["Location"]) == (303, "/Codertocat/Hello-World/pull/13")
        status, headers, _ = _request(forge, "POST", "/Codertocat/Hello-World/pull/13/merge", {})
        assert status == 303
        status, _, page = _request(forge, "GET", "/Codertocat/Hello-World/pull/13")
        assert status == 200 and "Merged" in page and "Merge pull request" not in page
        status, _, index = _request(forge, "GET", "/")
        assert "Codertocat/Hello-World" in index and "pull_request.closed" in index
    finally:
        forge.stop()
    assert [(d["action"], d["status"]) for d in forge.deliveries] == [("opened", 202), ("closed", 202)]


def test_the_forge_keeps_its_users_and_pull_requests_across_a_restart(tmp_path):
    path = str(tmp_path / "local-forge.json")
    forge = LocalForge(state_path=path)
    kofi = forge.authorize("kofi")
    number = forge.open_pull_request("medic/cht-core", 9000, "kofi", title="Sync faster")
    forge.set_admin("medic/cht-core", "maria")
    forge.save()
    forge.stop()

    again = LocalForge(state_path=path)
    try:
        assert again.authorize("kofi") == kofi
        repo, pull = again._pull("medic/cht-core", number)
        assert (pull["title"], pull["body"], pull["state"], pull["author"]) == (
            "Sync faster", "Fixes #9000", "open", "kofi")
        assert repo["admins"] == ["maria"]
        assert again.open_pull_request("medic/cht-core", 9001, "kofi") == number + 1
        status, _, body = _request(again, "GET", "/repos/medic/cht-core/collaborators/maria/permission")
        assert (status, json.loads(body)["permission"]) == (200, "admin")
    finally:
        again.stop()


def test_the_item_page_links_to_the_local_forge_only_when_it_runs(app, session, client, monkeypatch):
    world = World(session, client)
    item = world.issue(12)
    assert "local forge" not in client.get(f"/items/{item.id}").get_data(as_text=True)
    monkeypatch.setitem(app.config, "STANDINS", {"forge": "http://127.0.0.1:9"})
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert 'href="http://127.0.0.1:9/Codertocat/Hello-World/issues/12"' in page
    assert "Open a pull request on the local forge" in page


def test_the_authorize_page_sends_the_browser_back_only_to_an_http_address(forge):
    form = {"client_id": LOCAL_OAUTH_CLIENT_ID, "state": "s", "login": "kofi"}
    status, _, page = _request(forge, "POST", "/login/oauth/authorize", dict(form, redirect_uri="javascript:alert(1)"))
    assert status == 400 and "Unknown OAuth client" in page
    status, headers, _ = _request(forge, "POST", "/login/oauth/authorize",
                                  dict(form, redirect_uri="http://localhost/cb?next=1"))
    assert status == 303 and headers["Location"].startswith("http://localhost/cb?next=1&code=")
    status, _, _ = _request(forge, "GET", "/login/oauth/authorize?" + urlencode(
        {"client_id": "another-client", "redirect_uri": "http://localhost/cb"}))
    assert status == 400


def test_the_local_forge_lists_a_pull_requests_reviews_as_github_does(forge):
    """``GET /repos/{owner}/{repo}/pulls/{number}/reviews``, read by the sync's client over HTTP;
    a review submitted without its delivery is what sync alone sees."""
    from types import SimpleNamespace

    from marketplace.forges.github import GitHubClient

    number = forge.open_pull_request("org/repo", 3, "trainee")
    first = forge.review_pull_request("org/repo", number, "mentor", "CHANGES_REQUESTED", "Add a test.", deliver=False)
    second = forge.review_pull_request("org/repo", number, "mentor", "APPROVED", deliver=False)
    client = GitHubClient(forge.url, None)
    try:
        reviews = client.pull_reviews(SimpleNamespace(owner="org", name="repo"), number)
    finally:
        client.close()
    mentor_id = forge.authorize("mentor")
    assert [(r.review_id, r.reviewer_forge_id, r.state, r.body) for r in reviews] == [
        (first, mentor_id, "changes_requested", "Add a test."), (second, mentor_id, "approved", "")]
    assert second == first + 1 and all(r.submitted_at is not None for r in reviews)
    assert [d["event"] for d in forge.deliveries] == ["pull_request"]  # the opening; no review delivery
    with pytest.raises(ForgeError):
        forge.review_pull_request("org/repo", number, "mentor", "DISMISSED")


def test_a_merge_on_the_local_forge_closes_the_fixed_issue_as_completed_through_the_webhook(session, client):
    from marketplace.backlog.models import BacklogItem, ItemLabel, ItemState
    from marketplace.standins.forge import issue_fields
    from marketplace.webhooks.models import WebhookDelivery

    world = World(session, client)

    def app_issue(full_name: str, number: int):
        item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == world.repo.id,
                                                        BacklogItem.number == number))
        return issue_fields(item) if item is not None else None

    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), issues=app_issue, repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 12}})
    try:
        implementor, item = _funded_claimed_item(world, forge.authorize("kofi"))
        session.add(ItemLabel(item_id=item.id, name="help wanted"))
        session.flush()
        before = (item.forge_id, item.title, item.body, item.author_login, item.html_url)
        number = forge.open_pull_request("Codertocat/Hello-World", 12, "kofi")
        assert forge.merge_pull_request("Codertocat/Hello-World", number) == 202
        # Merged again is refused; the issue is closed in the app now: no second issues delivery.
        assert forge.close_fixed_issue(forge.repos["codertocat/hello-world"],
                                       forge.repos["codertocat/hello-world"]["pulls"][str(number)]) is None
    finally:
        forge.stop()

    assert [(d["event"], d["action"], d["number"], d["status"]) for d in forge.deliveries] == [
        ("pull_request", "opened", 13, 202), ("pull_request", "closed", 13, 202), ("issues", "closed", 12, 202)]
    session.refresh(item)
    assert (item.state, item.state_reason) == (ItemState.closed, "completed")
    # Only the state changed: the delivery carried the app's own issue.
    assert (item.forge_id, item.title, item.body, item.author_login, item.html_url) == before
    assert sorted(label.name for label in item.labels) == ["bug", "help wanted"]  # "bug": the recorded issue's
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == world.repo.id,
                                                    PullRequest.number == 13))
    assert item.solved_by_id == pull.id
    [payout] = world.payouts_of(item)
    assert (payout.state, payout.suggested_recipient_id) == (PayoutState.proposed, implementor.id)
    delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.event == "issues")
                               .order_by(WebhookDelivery.id.desc())).first()
    assert (delivery.action, delivery.outcome) == ("closed", f"item {item.id} updated")


def test_a_merge_fixing_an_issue_the_app_does_not_hold_sends_no_issues_delivery(session, client):
    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), issues=lambda full_name, number: None, repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 40}})
    try:
        number = forge.open_pull_request("Codertocat/Hello-World", 39, "kofi")
        assert forge.merge_pull_request("Codertocat/Hello-World", number) == 202
    finally:
        forge.stop()
    assert [(d["event"], d["action"]) for d in forge.deliveries] == [("pull_request", "opened"),
                                                                     ("pull_request", "closed")]


def _app_issues(session, world):
    from marketplace.backlog.models import BacklogItem
    from marketplace.standins.forge import issue_fields

    def app_issue(full_name: str, number: int):
        item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == world.repo.id,
                                                        BacklogItem.number == number,
                                                        BacklogItem.deleted_at.is_(None)))
        return issue_fields(item) if item is not None else None
    return app_issue


def test_a_merge_closes_the_fixed_issue_even_when_the_app_saw_it_updated_in_the_merge_second_or_later(
        session, client):
    from datetime import timedelta

    from marketplace.backlog.models import ItemState
    from marketplace.timeutil import utcnow

    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), issues=_app_issues(session, world), repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 12}})
    try:
        _implementor, item = _funded_claimed_item(world, forge.authorize("kofi"))
        # The app holds the issue as updated on the forge in the very second of the merge, or after it
        # by the forge's clock: an issues.closed stamped with the merge's second would be stale (GitHub's
        # timestamps have 1-second resolution; the local forge answers no issue GET to break a tie).
        later = utcnow().replace(microsecond=0) + timedelta(hours=1)
        item.forge_updated_at = later
        session.flush()
        number = forge.open_pull_request("Codertocat/Hello-World", 12, "kofi")
        assert forge.merge_pull_request("Codertocat/Hello-World", number) == 202
    finally:
        forge.stop()
    assert [(d["event"], d["action"], d["number"], d["status"]) for d in forge.deliveries][1:] == [
        ("pull_request", "closed", 13, 202), ("issues", "closed", 12, 202)]
    session.refresh(item)
    assert (item.state, item.state_reason, item.forge_updated_at) == (
        ItemState.closed, "completed", later + timedelta(seconds=1))


def test_a_merge_fixing_a_closed_deleted_or_authorless_issue_and_a_second_merge(session, client):
    from marketplace.backlog.models import ItemState
    from marketplace.timeutil import utcnow

    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), issues=_app_issues(session, world), repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 60}})
    try:
        closed, deleted, authorless = world.issue(51), world.issue(52), world.issue(53)
        closed.state = ItemState.closed
        deleted.deleted_at = utcnow()
        authorless.author_login, authorless.author_forge_id, authorless.body = None, None, None
        session.flush()
        merged = {number: forge.open_pull_request("Codertocat/Hello-World", number, "kofi")
                  for number in (51, 52, 53)}
        for number in (51, 52, 53):
            assert forge.merge_pull_request("Codertocat/Hello-World", merged[number]) == 202
        with pytest.raises(ForgeError):
            forge.merge_pull_request("Codertocat/Hello-World", merged[53])  # merged twice: refused
        # Another pull request fixing the issue the first one closed: it is closed in the app, nothing sent.
        again = forge.open_pull_request("Codertocat/Hello-World", 53, "kofi")
        assert forge.merge_pull_request("Codertocat/Hello-World", again) == 202
    finally:
        forge.stop()
    assert [(d["event"], d["action"], d["number"], d["status"]) for d in forge.deliveries if d["action"] != "opened"] == [
        ("pull_request", "closed", merged[51], 202), ("pull_request", "closed", merged[52], 202),
        ("pull_request", "closed", merged[53], 202), ("issues", "closed", 53, 202),
        ("pull_request", "closed", again, 202)]
    session.refresh(authorless)
    assert (authorless.state, authorless.state_reason, authorless.author_login, authorless.body) == (
        ItemState.closed, "completed", None, None)
    session.refresh(deleted)
    assert deleted.state is ItemState.open

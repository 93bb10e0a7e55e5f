"""admin delivery replay and sync-now authorization and CSRF (evidence)."""
from sqlalchemy import func, select

from marketplace.forges.models import SyncRun
from marketplace.webhooks.models import WebhookDelivery
from tests.admin.test_admin import csrf_from, make_user, sign_in_as
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_github


def _delivery(client, session):
    post_github(client, "ping", payload("github/webhooks/ping/ping.json"), "review-admin-ping")
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "review-admin-ping"))


def test_replay_and_sync_now_refuse_anonymous_and_non_admins(client, session):
    delivery = _delivery(client, session)
    repo = make_repository("org-a", "repo-x")
    for path in (f"/admin/deliveries/{delivery.id}/replay", f"/admin/sync/{repo.id}"):
        assert client.post(path).status_code in (303, 400)  # CSRF check runs first
        assert client.get(path).status_code == 405
    sign_in_as(client, make_user(session, "funder@example.org", admin=False))
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for path in (f"/admin/deliveries/{delivery.id}/replay", f"/admin/sync/{repo.id}"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403
    assert session.get(WebhookDelivery, delivery.id).attempts == 1
    assert session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.repository_id == repo.id)) == 0


def test_sync_now_without_csrf_is_refused(client, session):
    repo = make_repository("org-a", "repo-x")
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    assert client.post(f"/admin/sync/{repo.id}").status_code == 400
    assert session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.repository_id == repo.id)) == 0


def test_deliveries_page_escapes_outcome(client, session):
    post_github(client, "<script>x</script>", {"zen": 1}, "review-xss")
    sign_in_as(client, make_user(session, "host@example.org", admin=True))
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "<script>x</script>" not in html

"""One living comment and the bounty label per funded item, edited through its
life, never posted twice (issue 22)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from jobs.presence import refresh_item
from marketplace.notifications.models import OutboxMessage
from marketplace.payouts import service as payouts
from marketplace.presence import service as presence
from marketplace.presence.service import marker
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW
from tests.presence.helpers import actions, comments, edits, labels, posts, row, turn_on


def test_one_comment_is_edited_through_funding_claim_solved_and_paid(world, session, github_forge):
    item = world.issue(301)
    turn_on(world)
    assert github_forge.writes() == []  # not funded: nothing on the forge
    world.fund(item, 12000)
    session.commit()
    [comment] = comments(github_forge, 301)
    assert comment["body"].startswith(marker(item.id))
    assert "**Bounty on Backlog Commons:** $120" in comment["body"]
    assert "Open: nobody holds a claim yet." in comment["body"]
    assert f"http://localhost/items/{item.id}/badge.svg" in comment["body"]
    assert labels(github_forge, 301) == {"bounty"}

    ama = world.implementor("ama@example.org", github_id=5001)
    world.claim(item, ama)
    session.commit()
    [comment] = comments(github_forge, 301)
    assert "Claimed by @ama: the work is in progress." in comment["body"]

    world.pull(401, "Fixes #301", author_id=5001, merged=True)  # the delivery's job commits
    [comment] = comments(github_forge, 301)
    assert "Solved: the payout goes out once a maintainer approves it." in comment["body"]

    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    session.commit()
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    session.commit()
    [comment] = comments(github_forge, 301)
    assert "Paid: $120 went to the implementors." in comment["body"]
    assert labels(github_forge, 301) == set()  # no money held any more: the label goes

    assert len(posts(github_forge)) == 1
    assert len(edits(github_forge)) == 3  # claimed, solved, paid
    assert row(session, item).comment_id == comment["id"]
    assert actions(session, item) == ["post_comment", "add_label", "edit_comment", "edit_comment",
                                      "edit_comment", "remove_label"]


def test_a_retried_job_edits_and_never_posts_twice(world, session, github_forge):
    item = world.issue(302)
    turn_on(world)
    world.fund(item, 5000)
    session.commit()
    before = len(github_forge.writes())
    assert refresh_item(item.id) == "current"  # the same state again: nothing written
    assert len(github_forge.writes()) == before
    world.fund(item, 2500)
    session.commit()
    assert refresh_item(item.id) == "current"
    assert len(posts(github_forge)) == 1 and len(comments(github_forge, 302)) == 1
    assert "$75" in comments(github_forge, 302)[0]["body"]


def test_a_retry_after_the_post_succeeded_but_before_its_id_was_stored_adopts_the_comment(
        world, session, github_forge):
    item = world.issue(303)
    turn_on(world)
    # The forge makes the comment, but its answer is lost (502): the job fails before storing the id.
    github_forge.lose_answer.append("/repos/Codertocat/Hello-World/issues/303/comments")
    world.fund(item, 5000)
    session.commit()
    assert len(comments(github_forge, 303)) == 1
    assert row(session, item) is None or row(session, item).comment_id is None
    # The job's retry finds the marked comment and edits it: still one comment.
    assert refresh_item(item.id) == "written"
    [comment] = comments(github_forge, 303)
    assert row(session, item).comment_id == comment["id"]
    assert len(posts(github_forge)) == 1
    assert "adopt_comment" in actions(session, item)
    assert labels(github_forge, 303) == {"bounty"}


def test_a_comment_deleted_by_a_person_is_posted_again_once_then_the_project_is_told(
        world, session, github_forge):
    item = world.issue(304)
    turn_on(world)
    world.fund(item, 5000)
    session.commit()
    [first] = comments(github_forge, 304)
    github_forge.delete_comment(first["id"])
    world.fund(item, 1000)
    session.commit()
    [second] = comments(github_forge, 304)
    assert second["id"] != first["id"] and "$60" in second["body"]
    github_forge.delete_comment(second["id"])
    world.fund(item, 1000)
    session.commit()
    assert comments(github_forge, 304) == []
    assert row(session, item).abandoned_at is not None
    world.fund(item, 1000)
    session.commit()
    assert comments(github_forge, 304) == []  # not posted in a loop
    assert len(posts(github_forge)) == 2
    told = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "maintainer@example.org")).all()
    assert any("was deleted twice" in (m.subject or "") for m in told)


def test_turning_it_off_stops_every_write(world, session, github_forge):
    item = world.issue(305)
    turn_on(world)
    world.fund(item, 5000)
    session.commit()
    before = len(github_forge.writes())
    presence.set_presence(world.repo, False, actor=world.maintainer)
    session.commit()
    world.fund(item, 5000)
    session.commit()
    assert refresh_item(item.id) == "off"
    assert len(github_forge.writes()) == before


@pytest.fixture
def redis_later(app, redis_url):
    """Switches the app to real Redis when the test says so (after its deliveries ran in-process)."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()

    def switch():
        app.config["REDIS_URL"] = redis_url
        app.extensions.pop("redis", None)
        return connection

    yield switch
    app.config["REDIS_URL"] = None
    app.extensions.pop("redis", None)
    connection.flushdb()


def test_a_rate_limit_reschedules_the_job_at_the_reset_time(world, session, github_forge, redis_later):
    item = world.issue(306)
    turn_on(world)
    rq_redis = redis_later()
    world.fund(item, 5000)
    session.commit()  # with Redis, the refresh waits in its queue
    assert [job.func_name for job in Queue("default", connection=rq_redis).jobs] == ["jobs.presence.refresh_item"]
    reset = int(time.time()) + 1800
    github_forge.fail("/repos/Codertocat/Hello-World/issues/306/comments", 403,
                      {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    assert refresh_item(item.id) == "rate limited"
    assert github_forge.writes() == []
    registry = ScheduledJobRegistry("default", connection=rq_redis)
    [job_id] = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id) == datetime.fromtimestamp(reset, tz=timezone.utc)
    assert Queue("default", connection=rq_redis).fetch_job(job_id).args == (item.id,)
    assert row(session, item).resume_at == datetime.fromtimestamp(reset, tz=timezone.utc).replace(tzinfo=None)
    assert actions(session, item) == ["rate_limited"]
    assert refresh_item(item.id) == "waiting"  # early: still nothing sent


def test_without_a_scheduler_the_cron_pass_resumes_after_the_wait(world, session, github_forge):
    item = world.issue(307)
    turn_on(world)
    github_forge.fail("/repos/Codertocat/Hello-World/issues/307/comments", 429, {"Retry-After": "60"})
    world.fund(item, 5000)
    session.commit()
    assert comments(github_forge, 307) == [] and row(session, item).resume_at is not None
    assert presence.resume_due(utcnow()) == 0  # not due yet
    assert presence.resume_due(utcnow() + timedelta(minutes=2)) == 1
    session.commit()
    assert len(comments(github_forge, 307)) == 1
    assert row(session, item).resume_at is None

"""The training pages work as plain HTML forms (no JavaScript): the backlog's
training filter (page and API), the item's switch, the mentor's part of a
training claim, the project's training page and the trainee's progress."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.claims.models import ClaimState
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.models import ProjectMentor, ReviewVerdict, TrainingItem
from tests.accounts.helpers import as_user, csrf


def _post(client, path, prefix="", **data):
    token = csrf(client, "/account")
    return client.post(path, data={**data, "csrf_token": token, f"{prefix}csrf_token": token})


def test_the_backlog_filters_training_items_on_the_page_and_in_the_api(world, client, session):
    x = world.training_item(1)
    ordinary = world.issue(2)
    session.commit()
    html = client.get("/?training=1&project=" + world.project.slug).get_data(as_text=True)
    assert x.title in html and f"/items/{ordinary.id}\"" not in html
    assert 'name="training" value="1" checked' in html
    data = client.get(f"/api/v1/items?training=1&project={world.project.slug}").get_json()
    assert [row["id"] for row in data["items"]] == [x.id]
    assert client.get("/api/v1/items?training=yes").status_code == 400
    spec = client.get("/api/v1/openapi.json").get_json()
    parameters = spec["paths"]["/api/v1/items"]["get"]["parameters"] if "/api/v1/items" in spec["paths"] \
        else spec["paths"]["/items"]["get"]["parameters"]
    assert "training" in [p["name"] for p in parameters]


def test_a_maintainer_marks_an_item_for_training_from_its_page(world, app, session):
    item = world.issue(1)
    session.commit()
    maintainer = as_user(app, world.maintainer)
    assert "Mark as a training item" in maintainer.get(f"/items/{item.id}").get_data(as_text=True)
    response = _post(maintainer, f"/items/{item.id}/training", training="1")
    assert response.status_code == 303
    assert session.get(TrainingItem, item.id) is not None
    assert "A training item." in as_user(app, world.trainee).get(f"/items/{item.id}").get_data(as_text=True)
    stranger = as_user(app, world.m1)
    assert _post(stranger, f"/items/{item.id}/training", training="0").status_code == 403


def test_a_mentor_approves_and_reviews_a_training_claim_from_its_page(world, app, session):
    x = world.training_item(1, escrow=5000)
    claim = world.request(x)
    session.commit()
    # The maintainer's usual approval is refused for a training claim.
    maintainer = as_user(app, world.maintainer)
    _post(maintainer, f"/claims/{claim.id}/approve", prefix="approve-")
    session.refresh(claim)
    assert claim.state is ClaimState.requested
    mentor = as_user(app, world.m1)
    page = mentor.get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "Approve and mentor this claim" in page
    assert _post(mentor, f"/claims/{claim.id}/mentor/approve", prefix="mentor-",
                 **{"mentor-note": "Good plan."}).status_code == 303
    session.refresh(claim)
    assert claim.state is ClaimState.approved and queries.training_claim_of(claim.id).mentor_id == world.m1.id
    # The trainee cannot review; the mentor requests changes, then approves.
    trainee = as_user(app, world.trainee)
    _post(trainee, f"/claims/{claim.id}/mentor/review", prefix="review-",
          **{"review-verdict": "approved"})
    assert queries.reviews_of(claim.id) == []
    _post(mentor, f"/claims/{claim.id}/mentor/review", prefix="review-",
          **{"review-verdict": "changes_requested", "review-note": "Add a test for empty input."})
    _post(mentor, f"/claims/{claim.id}/mentor/review", prefix="review-", **{"review-verdict": "approved"})
    assert [r.verdict for r in queries.reviews_of(claim.id)] == [ReviewVerdict.changes_requested,
                                                                  ReviewVerdict.approved]
    page = trainee.get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "Add a test for empty input." in page and "m1" in page


def test_the_trainee_sees_2_of_3_on_their_pages(world, app, session):
    for n, (number, mentor) in enumerate(((1, world.m1), (2, world.m2))):
        item = world.training_item(number)
        claim = world.mentored(item, mentor)
        world.approve_change(claim, mentor)
        world.merge(10 + n, item)
    session.commit()
    trainee = as_user(app, world.trainee)
    mine = trainee.get("/account/training").get_data(as_text=True)
    assert "2 of 3 training items merged" in mine
    assert "reviewed by 2 of 2 different mentors" in mine
    public = trainee.get(f"/people/{world.trainee.id}").get_data(as_text=True)
    assert "2 of 3 training items merged" in public


def test_maintainers_set_the_rule_name_mentors_and_revoke_on_the_training_page(world, app, session):
    newcomer = world.implementor("newcomer@example.org", 5020)  # certified (globally)
    session.commit()
    maintainer = as_user(app, world.maintainer)
    page = maintainer.get(f"/projects/{world.project.slug}/training").get_data(as_text=True)
    assert "Name a mentor" in page and "m1" in page
    _post(maintainer, f"/projects/{world.project.slug}/training/rule", prefix="rule-",
          **{"rule-merges_required": "1", "rule-mentors_required": "1", "rule-trainee_percent": "70"})
    rule = queries.rule_for(world.project.id)
    assert (rule.merges_required, rule.mentors_required, rule.trainee_percent) == (1, 1, 70)
    _post(maintainer, f"/projects/{world.project.slug}/training/mentors", prefix="mentor-",
          **{"mentor-email": "newcomer@example.org"})
    assert session.scalar(select(ProjectMentor).where(ProjectMentor.user_id == newcomer.id)) is not None
    # One merged training item now earns the certification; it is listed, then revoked with a reason.
    item = world.training_item(1, escrow=1000)
    claim = world.mentored(item, world.m1)
    world.approve_change(claim, world.m1)
    world.merge(10, item)
    [payout] = world.payouts_of(item)
    assert [s.amount_minor for s in payout.shares] == [630, 270]  # 70/30 of the net 900
    session.commit()
    [earned] = queries.earned_in(world.project.id)
    assert "t</a>" in world.client.get(f"/projects/{world.project.slug}").get_data(as_text=True)
    _post(maintainer, f"/projects/{world.project.slug}/training/certifications/{earned.certification_id}/revoke",
          prefix="revoke-", **{"revoke-reason": "Work copied from another project."})
    session.refresh(earned)
    assert earned.revoked_reason == "Work copied from another project."
    assert queries.earned_in(world.project.id) == []


def test_naming_a_mentor_who_is_neither_certified_nor_maintainer_is_refused(world, session):
    import pytest

    with pytest.raises(training.TrainingError):
        training.name_mentor(world.project, world.trainee, maintainer=world.maintainer)

"""Issue 20: a claim's deadline leaves room for its estimate (deadline ≥ today + estimate)."""
from __future__ import annotations

from datetime import timedelta

from marketplace.timeutil import utcnow
from tests.claims.test_claim_views import scene  # noqa: F401


def test_a_5_day_estimate_with_a_deadline_in_4_days_is_refused_and_keeps_what_was_typed(scene):
    four_days = utcnow().date() + timedelta(days=4)
    ama = scene.client(scene.ama)
    response = scene.request(ama, **{"claim-deadline": four_days.isoformat()})
    assert response.status_code == 303
    html = ama.get(f"/items/{scene.item.id}").get_data(as_text=True)
    assert "leaves less time than your estimate of 5 days" in html
    assert "Add the export endpoint" in html and f'value="{four_days.isoformat()}"' in html
    assert scene.claims() == []


def test_a_5_day_estimate_with_a_deadline_in_exactly_5_days_is_accepted(scene):
    five_days = utcnow().date() + timedelta(days=5)
    response = scene.request(scene.client(scene.ama), **{"claim-deadline": five_days.isoformat()})
    assert response.status_code == 303
    assert [claim.deadline for claim in scene.claims()] == [five_days]


def test_a_claim_plan_renders_markdown_like_a_bio_and_no_raw_html(scene):
    plan = "1. Add the **export** endpoint\n2. Test it <script>alert(1)</script>"
    response = scene.request(scene.client(scene.ama), **{"claim-plan": plan})
    assert response.status_code == 303
    [claim] = scene.claims()
    page = scene.client(scene.ama).get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "<li>Add the <strong>export</strong> endpoint</li>" in page
    assert "<script>alert(1)</script>" not in page and "**export**" not in page

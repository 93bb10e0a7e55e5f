"""Issue 20: a certification's "valid until" shows the day the issuer chose, not the day after."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.claims.models import Certification
from tests.payouts.test_payout_views import post, scene  # noqa: F401


def test_admin_certification_valid_until_15_march_2027_shows_15_march_everywhere(scene, smtp_server):
    yaw = scene.implementor("yaw@example.org", certified=False)
    host = scene.client(scene.admin)
    response = post(host, "/admin/certifications", **{"cert-email": "yaw@example.org", "cert-expires_on": "2027-03-15"})
    assert response.status_code == 303
    cert = scene.session.scalar(select(Certification).where(Certification.user_id == yaw.id))
    assert cert.valid_until.isoformat() == "2027-03-15"
    admin_page = host.get("/admin/certifications").get_data(as_text=True)
    profile = scene.client(scene.kofi).get(f"/people/{yaw.id}").get_data(as_text=True)
    for page in (admin_page, profile):
        assert "Mar 15, 2027" in page and "Mar 16, 2027" not in page

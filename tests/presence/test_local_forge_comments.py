"""The local forge stand-in takes the living comment and label, shows them on
its issue page, and sends a person's /claim as a signed issue_comment delivery (issue 22)."""
from __future__ import annotations

import re

from sqlalchemy import select

from marketplace.claims.models import Claim, ClaimState
from marketplace.presence import service as presence
from marketplace.standins.forge import LocalForge
from tests.conftest import GITHUB_SECRET
from tests.payouts.helpers import World
from tests.standins.test_local_forge import _request, _through


def test_the_local_forge_shows_the_living_comment_and_runs_a_claim_typed_there(app, session, client):
    world = World(session, client)
    forge = LocalForge(webhook_url="http://localhost/webhooks/github", webhook_secret=GITHUB_SECRET,
                       send=_through(client), repositories=lambda: {
                           "Codertocat/Hello-World": {"id": world.repo.forge_id, "max_number": 12}})
    previous = app.config["GITHUB_API_URL"]
    app.config["GITHUB_API_URL"] = forge.url
    try:
        item = world.issue(12)
        world.repo.installation_id = 1
        presence.set_presence(world.repo, True, actor=world.maintainer)
        world.fund(item, 4200)
        session.commit()
        [living] = forge.comments["codertocat/hello-world#12"]
        assert "**Bounty on Backlog Commons:** $42" in living["body"]
        assert forge.labels["codertocat/hello-world#12"] == ["bounty"]
        kofi = world.implementor("kofi@example.org", github_id=forge.authorize("kofi"))
        forge.add_comment("Codertocat/Hello-World", 12, "kofi", "/claim I will fix it this week.")
        assert forge.deliveries[-1]["event"] == "issue_comment" and forge.deliveries[-1]["status"] == 202
        [claim] = session.scalars(select(Claim).where(Claim.item_id == item.id)).all()
        assert (claim.claimant_id, claim.state) == (kofi.id, ClaimState.requested)
        status, _headers, page = _request(forge, "GET", "/Codertocat/Hello-World/issues/12")
        assert status == 200
        assert "@kofi asked to claim this item" in page and "/claim I will fix it this week." in page
        assert "<h2>Labels</h2><p>bounty</p>" in page
        # Two forms on one page: every id once, so each label names its own field (the comment's
        # author field took the pull request form's "author" id, and its label, before).
        ids = re.findall(r"\bid=['\"]?([\w-]+)", page)
        assert len(ids) == len(set(ids)), sorted(ids)
        assert "<label for=author>Author (a GitHub login)</label>" in page and "for=comment-author" in page
        assert len(forge.comments["codertocat/hello-world#12"]) == 2  # ours (edited) and kofi's
    finally:
        app.config["GITHUB_API_URL"] = previous
        forge.stop()

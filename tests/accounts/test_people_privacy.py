"""Privacy of /people/<id> (issue 23): ids are sequential, so only people who
chose to offer paid work (implementors) have a public page; a funder's or a
non-implementing maintainer's answers 404 like an id with no account — except
to the person themselves and to admins."""
from __future__ import annotations

from tests.accounts.helpers import as_user, person


def test_only_implementors_have_a_public_page(app, client, session):
    funder = person(session, "funder-private@example.org")
    implementor = person(session, "implementor-public@example.org")
    implementor.is_implementor = True
    session.flush()
    assert client.get(f"/people/{implementor.id}").status_code == 200
    assert client.get(f"/people/{funder.id}").status_code == 404
    assert client.get("/people/999999").status_code == 404
    stranger = as_user(app, person(session, "stranger@example.org"))
    assert stranger.get(f"/people/{funder.id}").status_code == 404
    assert as_user(app, funder).get(f"/people/{funder.id}").status_code == 200  # their own page
    assert as_user(app, person(session, "admin-people@example.org", admin=True)).get(
        f"/people/{funder.id}").status_code == 200

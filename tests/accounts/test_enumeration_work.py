"""Account enumeration by timing (issue 23): sign-up and password reset do the
same work whether the address has an account or not. The test counts the
expensive steps on each path (the scrypt hash, the e-mail rendered), not wall
time."""
from __future__ import annotations

import pytest

from tests.accounts.helpers import PASSWORD, csrf, person


@pytest.fixture
def work(monkeypatch):
    """Counts of password hashes and e-mails rendered during the test."""
    from marketplace.accounts import models
    from marketplace.notifications import mail

    counts = {"hash": 0, "render": 0}
    real_hash, real_render = models.generate_password_hash, mail.render

    def counting_hash(*args, **kwargs):
        counts["hash"] += 1
        return real_hash(*args, **kwargs)

    def counting_render(*args, **kwargs):
        counts["render"] += 1
        return real_render(*args, **kwargs)

    monkeypatch.setattr(models, "generate_password_hash", counting_hash)
    monkeypatch.setattr(mail, "render", counting_render)
    return counts


def _signup(client, email):
    return client.post("/signup", data={"display_name": "Ama", "email": email, "password": PASSWORD,
                                        "csrf_token": csrf(client, "/signup")})


def test_sign_up_hashes_the_password_once_for_a_new_and_for_a_taken_address(client, session, work):
    person(session, "taken@example.org")
    session.commit()
    before = dict(work)
    assert _signup(client, "new-address@example.org").status_code == 303
    new = {key: work[key] - before[key] for key in work}
    before = dict(work)
    assert _signup(client, "taken@example.org").status_code == 303
    taken = {key: work[key] - before[key] for key in work}
    assert new == taken == {"hash": 1, "render": 1}


def test_password_reset_renders_the_e_mail_for_a_known_and_an_unknown_address(client, session, work):
    person(session, "known@example.org")
    session.commit()
    before = work["render"]
    assert client.post("/reset", data={"email": "known@example.org",
                                       "csrf_token": csrf(client, "/reset")}).status_code == 303
    known = work["render"] - before
    before = work["render"]
    assert client.post("/reset", data={"email": "nobody-here@example.org",
                                       "csrf_token": csrf(client, "/reset")}).status_code == 303
    assert known == work["render"] - before == 1

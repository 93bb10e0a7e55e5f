"""Sign-in throttled per account as well as per client address (issue 23),
without locking the owner out: after five wrong passwords for one address,
from any client addresses, each further attempt waits 30 s after the last
wrong one, doubling (at most 15 minutes); the right password after the wait
signs in; other accounts never wait; the owner's own browser (its known-device
cookie) counts apart from a stranger's guesses."""
from __future__ import annotations

import itertools

import pytest
import redis

from marketplace.accounts import backoff
from tests.accounts.helpers import PASSWORD, csrf
from tests.conftest import make_app

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


class Clock:
    """The back-off's clock (Unix seconds), moved by hand."""

    def __init__(self, now: float = 2_000_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(backoff, "_clock", clock)
    return clock


@pytest.fixture
def policy_on(app, monkeypatch):
    """The production policy (5 free, 30 s doubling, 15 min at most) on fresh counts in memory."""
    monkeypatch.setitem(app.config, "SIGNIN_BACKOFF_FREE", 5)
    monkeypatch.setitem(app.config, "SIGNIN_BACKOFF_SECONDS", 30)
    monkeypatch.setitem(app.config, "SIGNIN_BACKOFF_MAX_SECONDS", 900)
    monkeypatch.setitem(app.extensions, "signin_backoff", backoff._Stores(None))


def _owner(session, email: str):
    from marketplace.accounts.models import User
    from marketplace.timeutil import utcnow

    user = User(display_name="Owner", email_verified_at=utcnow())
    user.set_email(email)
    user.set_password(PASSWORD)
    session.add(user)
    session.commit()
    return user


def _attempt(client, email: str, password: str, address: str | None = None):
    """One sign-in POST from ``address`` (a new client address each time by default)."""
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf(client)},
                       environ_base={"REMOTE_ADDR": address or next(_addresses)})


def _wait_said(response) -> str:
    """The wait the page names ("30 seconds"); Retry-After is at least as long (Flask-Limiter
    sets it to the later of this wait and its own per-address window)."""
    import re

    [said] = re.findall(r"Try again in (\d+ (?:seconds?|minutes?))", response.get_data(as_text=True))
    seconds = int(said.split()[0]) * (60 if "minute" in said else 1)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= seconds - 1  # it rounds down
    return said


def _signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def test_the_wait_doubles_after_the_free_wrong_passwords_and_is_capped():
    policy = backoff.Policy(free=5, base=30, most=900)
    assert [policy.wait_after(n) for n in range(0, 12)] == [0, 0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
    assert policy.wait_after(10_000) == 900


def test_wrong_passwords_from_many_addresses_make_the_account_wait_then_the_owner_signs_in(
        app, client, session, clock, policy_on):
    _owner(session, "backoff-owner@example.org")
    for _ in range(5):  # five guesses, each from another client address: the per-address limit never sees them
        assert _attempt(app.test_client(), "backoff-owner@example.org", "wrong " + PASSWORD).status_code == 400
    refused = _attempt(client, "backoff-owner@example.org", PASSWORD)
    assert _wait_said(refused) == "30 seconds"
    assert not _signed_in(client)  # the right password was not even checked
    clock.advance(29)
    assert _wait_said(_attempt(client, "backoff-owner@example.org", PASSWORD)) == "1 second"
    clock.advance(1)
    signed_in = _attempt(client, "backoff-owner@example.org", PASSWORD)
    assert signed_in.status_code == 303
    assert _signed_in(client)
    # The right password forgot the count: five wrong ones are free again.
    stranger = app.test_client()
    assert [_attempt(stranger, "backoff-owner@example.org", "wrong").status_code for _ in range(5)] == [400] * 5


def test_attempts_during_the_wait_do_not_count_and_each_further_wrong_one_doubles_it(
        app, client, session, clock, policy_on):
    _owner(session, "backoff-doubling@example.org")
    for _ in range(5):
        _attempt(client, "backoff-doubling@example.org", "wrong")
    for _ in range(20):  # hammering during the wait changes nothing
        assert _attempt(client, "backoff-doubling@example.org", "wrong").status_code == 429
    clock.advance(30)
    assert _attempt(client, "backoff-doubling@example.org", "wrong").status_code == 400  # checked: a sixth
    assert _wait_said(_attempt(client, "backoff-doubling@example.org", PASSWORD)) == "60 seconds"
    clock.advance(60)
    assert _attempt(client, "backoff-doubling@example.org", "wrong").status_code == 400  # a seventh
    assert _wait_said(_attempt(client, "backoff-doubling@example.org", PASSWORD)) == "2 minutes"
    clock.advance(120)
    assert _attempt(client, "backoff-doubling@example.org", PASSWORD).status_code == 303


def test_another_account_is_unaffected(app, client, session, clock, policy_on):
    _owner(session, "backoff-target@example.org")
    _owner(session, "backoff-neighbour@example.org")
    address = "203.0.113.9"  # even from the very client address that made the guesses
    for _ in range(8):
        _attempt(client, "backoff-target@example.org", "wrong", address)
    assert _attempt(client, "backoff-target@example.org", PASSWORD, address).status_code == 429
    assert _attempt(client, "backoff-neighbour@example.org", PASSWORD, address).status_code == 303
    assert _signed_in(client)


def test_the_owners_known_browser_is_not_kept_waiting_by_a_strangers_guesses(app, session, clock, policy_on):
    _owner(session, "backoff-device@example.org")
    owner = app.test_client()
    assert _attempt(owner, "backoff-device@example.org", PASSWORD).status_code == 303
    cookie = owner.get_cookie(backoff.DEVICE_COOKIE, path="/login")
    assert cookie is not None and cookie.http_only
    owner.post("/logout", data={"csrf_token": csrf(owner, "/account")})
    stranger = app.test_client()
    for _ in range(10):
        _attempt(stranger, "backoff-device@example.org", "wrong")
    assert _attempt(stranger, "backoff-device@example.org", PASSWORD).status_code == 429
    # The owner's browser carries its cookie: its own count, untouched by the stranger.
    assert _attempt(owner, "backoff-device@example.org", PASSWORD).status_code == 303
    assert _signed_in(owner)
    # The cookie is for that address only: copied to another address's sign-in it is the address's count.
    other = app.test_client()
    other.set_cookie(backoff.DEVICE_COOKIE, cookie.value, path="/login")
    assert backoff.key_for("someone-else@example.org", cookie.value) == backoff.key_for(
        "someone-else@example.org", None)
    forged = cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB")
    with app.test_request_context():
        assert backoff.key_for("backoff-device@example.org", forged) == backoff.key_for(
            "backoff-device@example.org", None)


def test_an_address_without_account_backs_off_the_same_way(app, client, session, clock, policy_on):
    # The answer must not tell who has an account.
    _owner(session, "backoff-known@example.org")
    answers = {}
    for email in ("backoff-known@example.org", "backoff-nobody@example.org"):
        statuses = [_attempt(client, email, "wrong").status_code for _ in range(6)]
        refused = _attempt(client, email, "wrong")
        answers[email] = (statuses, _wait_said(refused))
    assert answers["backoff-known@example.org"] == answers["backoff-nobody@example.org"] == (
        [400] * 5 + [429], "30 seconds")


def test_counts_are_shared_through_redis_by_every_process(database_url, redis_url, clock):
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    one = make_app(database_url, REDIS_URL=redis_url, SIGNIN_BACKOFF_FREE=5)
    two = make_app(database_url, REDIS_URL=redis_url, SIGNIN_BACKOFF_FREE=5)
    try:
        with one.app_context():
            key = backoff.key_for("backoff-shared@example.org", None)
            for _ in range(5):
                backoff.record_failure(key)
        assert connection.hget(backoff._PREFIX + key, "failures") == b"5"
        assert 0 < connection.ttl(backoff._PREFIX + key) <= backoff.FORGET_AFTER
        with two.app_context():
            assert backoff.wait_seconds(key) == 30
            clock.advance(30)
            assert backoff.wait_seconds(key) == 0
            backoff.clear(key)
        assert connection.exists(backoff._PREFIX + key) == 0
    finally:
        connection.flushdb()


def test_with_redis_down_the_counts_fall_back_to_memory(database_url, clock, caplog):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    app = make_app(database_url, REDIS_URL=f"redis://127.0.0.1:{dead_port}/0", SIGNIN_BACKOFF_FREE=5)
    with app.app_context():
        key = backoff.key_for("backoff-redis-down@example.org", None)
        for _ in range(5):
            backoff.record_failure(key)
        assert backoff.wait_seconds(key) == 30
    assert "counted in memory" in caplog.text

"""Sign-in back-off per account (issue 23): a throttle, never a lock.

Flask-Limiter counts sign-in attempts per client address; this counts the
wrong passwords typed for one e-mail address, from whatever addresses they
come. The first ``SIGNIN_BACKOFF_FREE`` (5) cost nothing; after that, each
further attempt for the address waits ``SIGNIN_BACKOFF_SECONDS`` (30) after
the last wrong one, doubling with every further wrong password up to
``SIGNIN_BACKOFF_MAX_SECONDS`` (900). An attempt during the wait is answered
without checking the password, and does not count, so hammering does not make
the wait longer; the right password after the wait signs in and forgets the
count. The count is forgotten a day after the last wrong password.

The owner is never locked out by a stranger's guesses: a successful sign-in
leaves a signed "known device" cookie naming the address (a hash of it) and a
random device id; attempts that carry it count on their own key, so the
stranger's wrong passwords never make the owner's own browser wait.

Counts are keyed by a hash of the address's NFKC case-folded key, whether an
account uses it or not (the answer must not tell who has an account). They
live in Redis (``REDIS_URL``) so that every process shares them; while Redis
does not answer, or without it, in this process's memory (as the limiter
falls back), and Redis is tried again after ``_RETRY_REDIS_AFTER`` seconds.
"""
from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass

import redis
from flask import Flask, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from marketplace.accounts.models import email_key

log = logging.getLogger(__name__)

DEVICE_COOKIE = "known_device"
DEVICE_COOKIE_DAYS = 180
FORGET_AFTER = 24 * 3600  # seconds after the last wrong password
_RETRY_REDIS_AFTER = 30.0  # seconds before a Redis that failed is asked again
_PREFIX = "signin-backoff:"
_clock = time.time  # Unix seconds; tests move it forward


@dataclass(frozen=True)
class Policy:
    """Free wrong passwords, then a wait of ``base`` seconds doubling per wrong one, at most ``most``."""

    free: int = 5
    base: int = 30
    most: int = 900

    def wait_after(self, failures: int) -> int:
        """Seconds to wait after the last of ``failures`` wrong passwords (0 while free)."""
        if failures < self.free:
            return 0
        return min(self.base * 2 ** min(failures - self.free, 30), self.most)


def policy(app: Flask | None = None) -> Policy:
    """The back-off settings of ``app`` (the current one by default)."""
    config = (app or current_app).config
    return Policy(free=int(config.get("SIGNIN_BACKOFF_FREE", 5)), base=int(config.get("SIGNIN_BACKOFF_SECONDS", 30)),
                  most=int(config.get("SIGNIN_BACKOFF_MAX_SECONDS", 900)))


class _Memory:
    """Counts in this process: ``key -> (failures, last failure as Unix seconds)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def read(self, key: str, now: float) -> tuple[int, float]:
        with self._lock:
            failures, last = self._counts.get(key, (0, 0.0))
            if failures and now - last > FORGET_AFTER:
                del self._counts[key]
                return 0, 0.0
            return failures, last

    def fail(self, key: str, now: float) -> None:
        with self._lock:
            failures, last = self._counts.get(key, (0, 0.0))
            if failures and now - last > FORGET_AFTER:
                failures = 0
            self._counts[key] = (failures + 1, now)
            if len(self._counts) > 100_000:  # a flood of made-up addresses: drop the oldest half
                for old in sorted(self._counts, key=lambda k: self._counts[k][1])[:50_000]:
                    del self._counts[old]

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


class _Redis:
    """Counts in Redis, one hash per key (``failures``, ``last``), expiring a day after the last failure."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def read(self, key: str, now: float) -> tuple[int, float]:
        failures, last = self.connection.hmget(_PREFIX + key, "failures", "last")
        return int(failures or 0), float(last or 0.0)

    def fail(self, key: str, now: float) -> None:
        with self.connection.pipeline() as pipe:  # MULTI/EXEC: two processes never lose a count
            pipe.hincrby(_PREFIX + key, "failures", 1)
            pipe.hset(_PREFIX + key, "last", repr(now))
            pipe.expire(_PREFIX + key, FORGET_AFTER)
            pipe.execute()

    def clear(self, key: str) -> None:
        self.connection.delete(_PREFIX + key)


class _Stores:
    """Redis when it answers, else this process's memory; per application."""

    def __init__(self, url: str | None):
        self.redis = _Redis(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)) if url else None
        self.memory = _Memory()
        self.down_until = 0.0

    def call(self, method: str, *args):
        if self.redis is not None and time.monotonic() >= self.down_until:
            try:
                return getattr(self.redis, method)(*args)
            except redis.exceptions.RedisError as exc:
                self.down_until = time.monotonic() + _RETRY_REDIS_AFTER
                log.warning("sign-in back-off counted in memory: Redis does not answer (%s)", type(exc).__name__)
        return getattr(self.memory, method)(*args)


def _stores() -> _Stores:
    app = current_app._get_current_object()
    stores = app.extensions.get("signin_backoff")
    if stores is None:
        stores = app.extensions["signin_backoff"] = _Stores(app.config.get("REDIS_URL"))
    return stores


def _address_hash(email: str) -> str:
    return hashlib.sha256(email_key(email).encode()).hexdigest()[:32]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="known-device")


def key_for(email: str, device_cookie: str | None) -> str:
    """The key whose wrong passwords count for this attempt: the address's
    own, or, when the request carries a known-device cookie for this address,
    that device's (so a stranger's guesses never make the owner wait)."""
    address = _address_hash(email)
    if device_cookie:
        try:
            data = _serializer().loads(device_cookie, max_age=DEVICE_COOKIE_DAYS * 86400)
        except BadSignature:
            data = None
        if isinstance(data, dict) and data.get("a") == address and isinstance(data.get("d"), str):
            return f"{address}:{data['d']}"
    return address


def device_cookie_for(email: str) -> str:
    """A new signed known-device cookie value for ``email`` (set after a successful sign-in)."""
    return _serializer().dumps({"a": _address_hash(email), "d": secrets.token_urlsafe(12)})


def wait_seconds(key: str, now: float | None = None) -> int:
    """Whole seconds before an attempt on ``key`` is checked again; 0 when it may be now."""
    now = _clock() if now is None else now
    failures, last = _stores().call("read", key, now)
    wait = last + policy().wait_after(failures) - now
    return max(0, math.ceil(wait)) if failures >= policy().free else 0


def record_failure(key: str, now: float | None = None) -> None:
    """Count one wrong password on ``key`` (at ``now``, Unix seconds)."""
    _stores().call("fail", key, _clock() if now is None else now)


def clear(key: str) -> None:
    """Forget the wrong passwords on ``key`` (the right one was typed)."""
    _stores().call("clear", key)

"""People with an account. Minimal until the accounts issue adds sign-up."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class User(UserMixin, db.Model):
    """A person: funder, implementor, maintainer or admin (roles come later)."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Werkzeug's scrypt hash; None for an account that cannot sign in with a password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        """Store a scrypt hash of ``password`` (never the password)."""
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches; constant-time comparison by Werkzeug."""
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

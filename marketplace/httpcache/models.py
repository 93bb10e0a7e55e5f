"""The data version: one counter that moves whenever public data changes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class DataVersion(db.Model):
    """One row (``id`` 1): ``version`` goes up by one after each commit that
    wrote public data (items, funding, projects, pledges, payouts…), at
    ``changed_at`` (naive UTC). Public pages' ETags, Last-Modified and
    response-cache keys are made from it (:mod:`marketplace.httpcache.service`)."""

    __tablename__ = "data_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

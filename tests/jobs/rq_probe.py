"""Jobs for the tests that start real RQ processes (``flask rq worker``, ``flask rq cron``)."""
from sqlalchemy import func, select

from marketplace.extensions import db
from marketplace.projects.models import MemberProject


def count_projects() -> int:
    """How many member projects the job's application sees: it needs the app
    context and the database, as every real job does."""
    return db.session.scalar(select(func.count()).select_from(MemberProject))

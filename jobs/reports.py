"""Report jobs (queue ``default``): keep the stored public reports fresh, and
write the day's public data export."""
from marketplace.extensions import db
from marketplace.reports import public
from marketplace.reports.exports import build_archive, export_directory
from marketplace.tasks import job
from marketplace.timeutil import utcnow


@job(queue="default", timeout=600)
def refresh_reports() -> int:
    """Cron: recompute the stored commons report and the reports of projects
    that had money (so that anonymous requests read stored figures); returns
    how many were computed."""
    count = public.refresh_all()
    db.session.commit()
    return count


@job(queue="default", timeout=900)
def export_public_data() -> str:
    """Cron: write today's (UTC) public data export archive; returns its file name.
    Running it twice the same day replaces the archive with an identical one."""
    return build_archive(export_directory(), utcnow().date()).name

"""Report jobs (queue ``default``): keep the stored public reports fresh, and
write the day's public data export."""
from marketplace.extensions import db
from marketplace.projects.queries import all_projects
from marketplace.reports import public
from marketplace.reports.exports import build_archive, export_directory
from marketplace.tasks import job
from marketplace.timeutil import utcnow


@job(queue="default", timeout=600)
def refresh_reports() -> int:
    """Cron: recompute the commons report and every project's report (so that
    anonymous requests read stored figures); returns how many were computed."""
    public.commons_report(max_age=0)
    projects = all_projects()
    for project in projects:
        public.project_report(project, max_age=0)
    db.session.commit()
    return len(projects) + 1


@job(queue="default", timeout=900)
def export_public_data() -> str:
    """Cron: write today's (UTC) public data export archive; returns its file name.
    Running it twice the same day replaces the archive with an identical one."""
    return build_archive(export_directory(), utcnow().date()).name

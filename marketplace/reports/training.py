"""The training figures of the reports (issue 19): trainees, mentored merges and
certifications earned through training, by project and by the trainee's country.

Counted live from the training tables (:func:`marketplace.training.queries.figures_by`):
they are small, and a certification earned a minute ago shows at once."""
from __future__ import annotations

from marketplace.training.queries import figures_by


def training_figures(project_id: int | None = None) -> dict:
    """``{"by_project": [...], "by_country": [...], "totals": {...}}``; rows as
    :func:`marketplace.training.queries.figures_by` gives them; ``totals`` sums
    the rows by project (a trainee in two projects counts in each). Only
    ``project_id``'s figures when given (then ``by_project`` has one row at most)."""
    by_project = figures_by("project", project_id)
    totals = {name: sum(row[name] for row in by_project) for name in ("trainees", "mentored_merges",
                                                                       "certifications")}
    return {"by_project": by_project, "by_country": figures_by("country", project_id), "totals": totals}

"""Static pages, and the transparency page."""
from flask import Blueprint, render_template

from marketplace.ledger.summary import read as ledger_summary
from marketplace.payouts.queries import recent_payouts

bp = Blueprint("pages", __name__)


@bp.get("/about")
def about():
    """How the commons works, for funders, implementors and maintainers."""
    return render_template("pages/about.html")


@bp.get("/transparency")
def transparency():
    """Totals per currency and the last reconciliation, from the stored ledger
    summary (never a pass over the entries), and the latest payouts."""
    summary = ledger_summary()
    return render_template("pages/transparency.html", summary=summary,
                           totals=summary.totals if summary else {}, payouts=recent_payouts())

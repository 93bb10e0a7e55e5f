"""Static pages, and the transparency page."""
from flask import Blueprint, render_template

from marketplace.ledger.check import check
from marketplace.payouts.queries import recent_payouts
from marketplace.pledges.transparency import totals

bp = Blueprint("pages", __name__)


@bp.get("/about")
def about():
    """How the commons works, for funders, implementors and maintainers."""
    return render_template("pages/about.html")


@bp.get("/transparency")
def transparency():
    """Totals per currency from the ledger, and whether every invariant holds."""
    return render_template("pages/transparency.html", totals=totals(), violations=check(),
                           payouts=recent_payouts())

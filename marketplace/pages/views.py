"""Static pages."""
from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/about")
def about():
    """How the commons works, for funders, implementors and maintainers."""
    return render_template("pages/about.html")


@bp.get("/transparency")
def transparency():
    """Totals per currency from the ledger, and whether every invariant holds."""
    from marketplace.ledger.check import check
    from marketplace.pledges.transparency import recent_payouts, totals

    return render_template("pages/transparency.html", totals=totals(), violations=check(),
                           payouts=recent_payouts())

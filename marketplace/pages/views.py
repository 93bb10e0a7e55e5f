"""Static pages."""
from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/about")
def about():
    """How the commons works, for funders, implementors and maintainers."""
    return render_template("pages/about.html")

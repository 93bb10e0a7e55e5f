"""Form pieces shared by several domains' views."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf


class _WhichForm(FlaskForm):
    """The hidden ``form`` field that says which of a page's forms was sent."""

    class Meta:
        csrf = False  # the form it names checks the CSRF token

    form = HiddenField()


def which_form(*names: str) -> str | None:
    """Which of the page's forms (``names``) the POST names in its hidden
    ``form`` field; None for anything else."""
    chooser = _WhichForm()
    chooser.form.validators = [AnyOf(list(names))]
    return chooser.form.data if chooser.validate() else None

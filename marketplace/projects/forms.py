"""Forms a maintainer of a member project uses on an item's page (CSRF by Flask-WTF on every one)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

MAX_NUMBER_TEXT = 12
MAX_DECISION_TEXT = 40


def strip(value: str | None) -> str | None:
    """Leading and trailing white space is not part of what was typed."""
    return value.strip() if isinstance(value, str) else value


class ActionForm(FlaskForm):
    """A button with nothing to type: only the CSRF token."""


class LinkPullRequestForm(FlaskForm):
    """Link a pull request of the item's repository to the item by its number."""

    number = StringField(_l("Pull request number"), filters=[strip],
                         validators=[Optional(), Length(max=MAX_NUMBER_TEXT)])


class CloseDecisionForm(FlaskForm):
    """What a close the forge gave no reason for meant: ``completed`` or ``not_planned``."""

    decision = StringField(_l("Decision"), filters=[strip], validators=[Optional(), Length(max=MAX_DECISION_TEXT)])


class WorkTargetForm(FlaskForm):
    """The backlog item (by id) where the work of a duplicate or moved item went."""

    target = StringField(_l("Item"), filters=[strip], validators=[Optional(), Length(max=MAX_NUMBER_TEXT)])

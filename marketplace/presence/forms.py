"""The maintainer's form that turns the forge comment and label on or off for one repository."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SubmitField
from wtforms.validators import Length, Optional


class PresenceForm(FlaskForm):
    """Turn on (``turn_on``) or off (``turn_off``); on GitLab, with a project access token."""

    token = PasswordField(_l("GitLab project access token (scope api, role Reporter or more)"),
                          validators=[Optional(), Length(max=255)])
    turn_on = SubmitField(_l("Turn on"))
    turn_off = SubmitField(_l("Turn off"))

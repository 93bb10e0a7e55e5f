"""Training forms (CSRF by Flask-WTF on every one)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, RadioField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Email, InputRequired, Length, NumberRange, Optional

from marketplace.accounts.forms import as_choices
from marketplace.training.service import MAX_NOTE


class MarkForm(FlaskForm):
    """A maintainer marks an item for training (``training`` = "1") or not ("0")."""

    training = HiddenField(validators=[AnyOf(["0", "1"])])


class RuleForm(FlaskForm):
    """A project's training rule."""

    merges_required = IntegerField(_l("Merged training items that earn the certification"),
                                   validators=[InputRequired(), NumberRange(min=1, max=50)])
    mentors_required = IntegerField(_l("Different mentors who reviewed them, at least"),
                                    validators=[InputRequired(), NumberRange(min=1, max=10)])
    trainee_percent = IntegerField(_l("Trainee's share of the net (percent; the mentor has the rest)"),
                                   validators=[InputRequired(), NumberRange(min=1, max=100)])


class MentorForm(FlaskForm):
    """A maintainer names a mentor by the e-mail address of their account."""

    email = EmailField(_l("The e-mail address of the mentor's account"),
                       validators=[DataRequired(), Email(), Length(max=320)])


class RevokeForm(FlaskForm):
    """A maintainer revokes an earned certification, with a reason."""

    reason = TextAreaField(_l("Reason for revoking"), validators=[DataRequired(), Length(max=MAX_NOTE)])


class MentorApproveForm(FlaskForm):
    """A mentor approves a training claim, answering the trainee's plan."""

    note = TextAreaField(_l("Your answer to the trainee's plan"), validators=[Optional(), Length(max=MAX_NOTE)])


class ReviewForm(FlaskForm):
    """A mentor's review of the trainee's change."""

    verdict = RadioField(_l("Your review"), choices=as_choices([("approved", _l("Approve the change")),
                                                               ("changes_requested", _l("Request changes"))]),
                         validators=[InputRequired()])
    note = TextAreaField(_l("Note to the trainee"), validators=[Optional(), Length(max=MAX_NOTE)])


class TakeOverForm(FlaskForm):
    """A mentor takes over a training claim whose mentor is gone (nothing to fill in: CSRF only)."""

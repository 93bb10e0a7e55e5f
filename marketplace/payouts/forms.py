"""Payout forms: a maintainer's approval (with its split), cancellation, and a
recipient's manual payout details (CSRF by Flask-WTF on every one)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

MAX_RECIPIENTS = 5
MAX_NOTE = 2000
MAX_MANUAL_DETAILS = 2000


class SplitRowForm(Form):
    """One recipient of a split: their account (number or e-mail) and percentage."""

    recipient = StringField(_l("Recipient: account id or e-mail"), validators=[Optional(), Length(max=320)])
    percent = StringField(_l("Percentage"), validators=[Optional(), Length(max=12)])


class ApprovalForm(FlaskForm):
    """Up to five recipients with percentages (or an equal split); ``seen_gross`` is the gross
    (minor units) the page showed, so that approval refuses if the escrow changed since."""

    rows = FieldList(FormField(SplitRowForm), min_entries=MAX_RECIPIENTS, max_entries=MAX_RECIPIENTS)
    equal = BooleanField(_l("Split equally among the recipients instead of by percentage"))
    seen_gross = HiddenField()
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=MAX_NOTE)])
    preview = SubmitField(_l("Preview the amounts"))
    approve = SubmitField(_l("Approve the payout"))


class CancelForm(FlaskForm):
    note = TextAreaField(_l("Why is this payout cancelled? (shown on the public payout page)"),
                         validators=[DataRequired(), Length(max=MAX_NOTE)])


class ManualDetailsForm(FlaskForm):
    """Where the fiscal host sends a recipient's money by hand; shown to admins only."""

    details = TextAreaField(
        _l("Your bank account or mobile-money number, the name on it, and anything the fiscal host needs"),
        validators=[DataRequired(), Length(max=MAX_MANUAL_DETAILS)])

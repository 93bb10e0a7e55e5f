"""Forms of the project funds: subscribing, allotting, and the fiscal host's records."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from marketplace.accounts.forms import as_choices

MAX_ROW_ID = 2**31 - 1  # the largest id of a PostgreSQL integer primary key


class SubscribeForm(FlaskForm):
    """A monthly subscription: the amount typed in the reader's locale, in the chosen currency."""

    amount = StringField(_l("Amount each month"), validators=[DataRequired(), Length(max=40)])
    currency = SelectField(_l("Currency"))
    rail = SelectField(_l("Pay by"), default="card", choices=as_choices([
        ("card", _l("Card, every month (Stripe)")),
        ("bank_transfer", _l("Standing bank transfer to the fiscal host"))]))
    # Choices: "Myself" and the funder organisations the person is a member of. No choice check
    # here: the service refuses an organisation the person may not act for, with a clear message.
    organisation_id = SelectField(_l("Subscribe as"), coerce=str, default="", validate_choice=False)
    show_name = BooleanField(_l("Show my name among the fund's subscribers"))


class AllotForm(FlaskForm):
    """A maintainer allots fund money to an item of the project."""

    # Ids are PostgreSQL integers: a larger number would fail the look-up itself (an error page, not "no such item").
    item = IntegerField(_l("Item number (its commons id)"),
                        validators=[DataRequired(), NumberRange(min=1, max=MAX_ROW_ID)])
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=40)])
    reason = StringField(_l("Short public reason"), validators=[DataRequired(), Length(max=300)])
    token = HiddenField()


class TransferForm(FlaskForm):
    """The fiscal host saw one month's standing transfer arrive."""

    amount = StringField(_l("Amount received"), validators=[DataRequired(), Length(max=40)])
    reference = StringField(_l("Bank reference"), validators=[DataRequired(), Length(max=100)])
    received_on = DateField(_l("Received on"), validators=[DataRequired()])


class ReturnForm(FlaskForm):
    """The fiscal host sent a subscriber's return back by transfer."""

    reference = StringField(_l("Reference of the transfer back"), validators=[DataRequired(), Length(max=100)])

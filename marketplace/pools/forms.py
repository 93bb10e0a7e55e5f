"""Forms of the pools: a sponsor creates a pool; the fiscal host confirms its
budget and records what went back; an admin excludes a funder from a round."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from marketplace.accounts.forms import as_choices


class PoolForm(FlaskForm):
    """A new pool: amounts typed in the reader's locale, in the pool's currency; dates in UTC."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("What the pool is for"), validators=[Optional(), Length(max=2000)])
    kind = SelectField(_l("Kind"), default="ratio", choices=as_choices([
        ("ratio", _l("Ratio matching: each eligible pledge is matched when it is paid")),
        ("quadratic", _l("Quadratic-funding round: divided among items at its end"))]))
    currency = SelectField(_l("Currency"))
    budget = StringField(_l("Budget"), validators=[DataRequired(), Length(max=40)])
    rail = SelectField(_l("Pay the budget by"), default="bank_transfer", choices=as_choices([
        ("card", _l("Card (Stripe Checkout), now")),
        ("bank_transfer", _l("Bank transfer to the fiscal host"))]))
    ratio_percent = SelectField(_l("Match (percent of each pledge)"), default="100",
                                choices=as_choices([("50", "50%"), ("100", "100%"), ("200", "200%")]))
    cap_per_pledge = StringField(_l("Most matched per pledge (optional)"), validators=[Optional(), Length(max=40)])
    cap_per_funder = StringField(_l("Most matched per funder (optional)"), validators=[Optional(), Length(max=40)])
    cap_per_item = StringField(_l("Most matched per item (optional)"), validators=[Optional(), Length(max=40)])
    min_pledge = StringField(_l("Smallest pledge matched (optional)"), validators=[Optional(), Length(max=40)])
    item_cap_percent = IntegerField(_l("Round: most of the pool one item may get, percent (optional)"),
                                    validators=[Optional(), NumberRange(min=1, max=100)])
    sdgs = StringField(_l("Only these SDGs (numbers, comma-separated; optional)"),
                       validators=[Optional(), Length(max=100)])
    labels = StringField(_l("Only items with these labels (comma-separated; optional)"),
                         validators=[Optional(), Length(max=500)])
    starts_on = DateField(_l("Opens on (UTC)"), validators=[DataRequired()])
    ends_on = DateField(_l("Closes on (UTC, the start of the day)"), validators=[DataRequired()])


class ConfirmBudgetForm(FlaskForm):
    """The fiscal host saw the sponsor's transfer arrive."""

    amount = StringField(_l("Amount received"), validators=[DataRequired(), Length(max=40)])
    reference = StringField(_l("Bank reference"), validators=[DataRequired(), Length(max=100)])
    received_on = DateField(_l("Received on"), validators=[DataRequired()])


class ReturnForm(FlaskForm):
    """The fiscal host sent what an ended pool holds back to its sponsor."""

    reference = StringField(_l("Reference of the transfer back"), validators=[DataRequired(), Length(max=100)])


class ExcludeForm(FlaskForm):
    """An admin excludes a funder from a round, with a reason."""

    # Ids are PostgreSQL integers: a larger number would fail the look-up itself.
    user_id = IntegerField(_l("Funder's account number"),
                           validators=[DataRequired(), NumberRange(min=1, max=2**31 - 1)])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])

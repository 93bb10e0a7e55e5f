"""The pledge form on an item page."""
from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from marketplace.accounts.forms import as_choices


class PledgeForm(FlaskForm):
    """Amount (typed in the reader's locale), currency, expiry, name shown or not, rail."""

    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=40)])
    currency = SelectField(_l("Currency"))
    expiry_months = IntegerField(_l("Refund me if the work is not done within (months)"), default=12,
                                 validators=[NumberRange(min=1, max=36)])
    show_name = BooleanField(_l("Show my name on the item page"))
    rail = SelectField(_l("Pay by"), default="card", choices=as_choices([
        ("card", _l("Card (Stripe Checkout)")), ("bank_transfer", _l("Bank transfer to the fiscal host"))]))
    # Shown when the amount is above PLEDGE_CONFIRM_ABOVE: the funder confirms it.
    confirm_large = BooleanField(_l("Yes, I mean to pledge this amount"))
    # Shown on items of projects with no maintainer: required there.
    acknowledge_unmaintained = BooleanField(_l(
        "I understand that nobody can approve claims or payouts for this project yet; my money waits in escrow "
        "(or comes back at expiry)"))


def pledge_form() -> PledgeForm:
    """The pledge form, its currencies from ``ALLOWED_CURRENCIES`` (the first one chosen by default)."""
    form = PledgeForm()
    currencies = current_app.config["ALLOWED_CURRENCIES"]
    form.currency.choices = as_choices((c, c) for c in currencies)
    if form.currency.data is None:
        form.currency.data = currencies[0]
    return form

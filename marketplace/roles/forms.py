"""Forms of issue 20's pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

# Currencies whose bank instructions the fiscal host page offers.
INSTRUCTION_CURRENCIES = ("USD", "EUR", "GBP", "KES", "GHS", "XOF", "INR", "BRL")


class ActionForm(FlaskForm):
    """A button with nothing to type (follow, unfollow): only the CSRF token."""


class FirmPayoutForm(FlaskForm):
    """How a firm is paid: its legal name and, for the manual rail, the company's bank or mobile-money details."""

    legal_name = StringField(_l("Legal name (on remittance advice)"), validators=[DataRequired(), Length(max=200)])
    details = TextAreaField(_l("The company's bank or mobile-money details (for the fiscal host's transfer)"),
                            validators=[Optional(), Length(max=2000)])


class FiscalHostForm(FlaskForm):
    """The fiscal host as an admin sets it; an empty field keeps the environment's value."""

    legal_name = StringField(_l("Legal name"), validators=[Optional(), Length(max=200)])
    email = EmailField(_l("Contact e-mail"), validators=[Optional(), Email(), Length(max=320)])
    address = TextAreaField(_l("Address for receipts"), validators=[Optional(), Length(max=2000)])


def fiscal_host_form(**data) -> FiscalHostForm:
    """A :class:`FiscalHostForm` with one ``bank_<CODE>`` text field per currency of
    :data:`INSTRUCTION_CURRENCIES` (bank transfer instructions for that currency)."""

    class _Form(FiscalHostForm):
        pass

    for code in INSTRUCTION_CURRENCIES:
        setattr(_Form, f"bank_{code}", TextAreaField(_l("Bank transfer instructions for %(currency)s",
                                                        currency=code),
                                                     validators=[Optional(), Length(max=4000)]))
    return _Form(**data)

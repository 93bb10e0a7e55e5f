"""Forms of the admin pages (CSRF by Flask-WTF on every one).

Each text field names its limit with ``Length``: a longer value is refused with
a field error and the page shows what was typed again; nothing is cut short.
Whether a required value is there is decided by the view, which answers as it
always has (a flashed message and a redirect)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import AnyOf, Length, Optional

MAX_EMAIL = 320
MAX_BANK_REFERENCE = 100
MAX_REFUND_REASON = 500
MAX_AMOUNT_TEXT = 40
MAX_DATE_TEXT = 10
MAX_MANUAL_REFERENCE = 200  # what payouts.service.record_manual_payout accepts
MAX_RETURN_REASON = 600
MAX_NUMBER_TEXT = 12
MAX_PATH_TEXT = 20


def strip(value: str | None) -> str | None:
    """Leading and trailing white space is not part of what was typed."""
    return value.strip() if isinstance(value, str) else value


class ActionForm(FlaskForm):
    """A button with nothing to type (replay, admit, confirm, reject, revoke): only the CSRF token."""


class SyncForm(FlaskForm):
    """Queue a sync; ``full`` is "1" for a full one."""

    full = HiddenField(validators=[Optional(), Length(max=1)])


class MaintainerForm(FlaskForm):
    """Name a maintainer of a project by the e-mail address of their account."""

    email = StringField(_l("E-mail of the maintainer"), filters=[strip], validators=[Optional(), Length(max=MAX_EMAIL)])


class AdminRoleForm(FlaskForm):
    """Grant or withdraw the admin role: the form says which, so sending it twice changes nothing more."""

    role = StringField(_l("Admin role"), validators=[AnyOf(["grant", "withdraw"])])  # the button pressed


class ConfirmTransferForm(FlaskForm):
    """A bank transfer arrived: the amount as typed, the date, the bank reference."""

    amount = StringField(_l("Amount received"), filters=[strip], validators=[Optional(), Length(max=MAX_AMOUNT_TEXT)])
    received_on = StringField(_l("Date"), filters=[strip], validators=[Optional(), Length(max=MAX_DATE_TEXT)])
    reference = StringField(_l("Bank reference"), filters=[strip],
                            validators=[Optional(), Length(max=MAX_BANK_REFERENCE)])
    other_amount = StringField(filters=[strip], validators=[Optional(), Length(max=1)])


class RefundForm(FlaskForm):
    """Refund (part of) a held pledge, with a reason; ``seen_refunded`` is what it had had back when shown."""

    amount = StringField(_l("Amount"), filters=[strip], validators=[Optional(), Length(max=MAX_AMOUNT_TEXT)])
    reason = StringField(_l("Reason"), filters=[strip], validators=[Optional(), Length(max=MAX_REFUND_REASON)])
    reference = StringField(_l("Transfer reference"), filters=[strip],
                            validators=[Optional(), Length(max=MAX_BANK_REFERENCE)])
    seen_refunded = HiddenField(validators=[Optional(), Length(max=MAX_NUMBER_TEXT)])


class RefundAfterPayoutForm(FlaskForm):
    """Refund (part of) a paid-out pledge from one paid share, by reversal or from the commons' funds."""

    amount = StringField(_l("Amount to refund after payout"), filters=[strip],
                         validators=[Optional(), Length(max=MAX_AMOUNT_TEXT)])
    share_id = StringField(_l("From the share of"), filters=[strip],
                           validators=[Optional(), Length(max=MAX_NUMBER_TEXT)])
    # "reversal" or "receivable"; the service refuses any other value.
    path = StringField(_l("Money comes back by"), filters=[strip], validators=[Optional(), Length(max=MAX_PATH_TEXT)])
    reference = StringField(_l("Transfer reference"), filters=[strip],
                            validators=[Optional(), Length(max=MAX_BANK_REFERENCE)])
    seen_refunded = HiddenField(validators=[Optional(), Length(max=MAX_NUMBER_TEXT)])


class ManualPayoutForm(FlaskForm):
    """The fiscal host paid a share by hand: the transfer's reference and date."""

    reference = StringField(_l("Transfer reference"), filters=[strip],
                            validators=[Optional(), Length(max=MAX_MANUAL_REFERENCE)])
    paid_on = StringField(_l("Date"), filters=[strip], validators=[Optional(), Length(max=MAX_DATE_TEXT)])


class ReturnedPayoutForm(FlaskForm):
    """A manual payout's transfer came back: why."""

    reason = StringField(_l("The transfer came back (returned / not paid); why"), filters=[strip],
                         validators=[Optional(), Length(max=MAX_RETURN_REASON)])

"""Claim and certification forms (CSRF by Flask-WTF on every one)."""
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import DateField, EmailField, HiddenField, IntegerField, SelectField, TextAreaField
from wtforms.validators import (
    AnyOf,
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
)

from marketplace.accounts.forms import as_choices
from marketplace.claims.certification import MAX_NOTE, default_expiry
from marketplace.claims.models import Claim
from marketplace.claims.queries import reassign_candidates
from marketplace.claims.service import MAX_PLAN_LENGTH
from marketplace.organisations.service import organisations_of

MAX_DECISION_NOTE = 2000


class TeamForm(FlaskForm):
    """A maintainer opens an item to a team (``open`` = "1") or back to one approved claim ("0")."""

    open = HiddenField(validators=[AnyOf(["0", "1"])])


class ClaimRequestForm(FlaskForm):
    """An implementor asks to do an item: plan, estimate, deadline, and the firm they work for (optional)."""

    plan = TextAreaField(_l("Your plan: what you will change and how"),
                         validators=[DataRequired(), Length(max=MAX_PLAN_LENGTH)])
    estimate_days = IntegerField(_l("Estimate (working days)"),
                                 validators=[InputRequired(), NumberRange(min=1, max=365)])
    deadline = DateField(_l("Deadline (UTC date)"), validators=[InputRequired()])
    # No Optional(): it would skip the check that the value is one of the choices.
    organisation_id = SelectField(_l("For the implementor firm"), coerce=str, default="")


class DecisionForm(FlaskForm):
    """A maintainer's note on approving or rejecting a claim."""

    note = TextAreaField(_l("Note to the claimant"), validators=[Optional(), Length(max=MAX_DECISION_NOTE)])


class ReassignForm(FlaskForm):
    """Move an approved claim to another implementor: one who asked for the item, or one named by e-mail."""

    to_user_id = SelectField(_l("An implementor who asked for this item"), coerce=str, default="")
    email = EmailField(_l("The e-mail address of an implementor"),
                       validators=[Optional(), Email(), Length(max=320)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=MAX_DECISION_NOTE)])


class CertificationForm(FlaskForm):
    """Certify an implementor (named by the e-mail address of their account) until a date."""

    email = EmailField(_l("E-mail of the implementor"), validators=[DataRequired(), Email(), Length(max=320)])
    expires_on = DateField(_l("Valid until (UTC date)"), validators=[InputRequired()])
    note = TextAreaField(_l("Note (training passed, reason)"), validators=[Optional(), Length(max=MAX_NOTE)])


def claim_request_form(user_id: int, draft: dict | None = None) -> ClaimRequestForm:
    """The claim request form (prefix ``claim``) for the person ``user_id``: "Myself"
    or one of the implementor firms they belong to. ``draft`` (:func:`claim_draft`)
    fills it as typed, with the errors it had, when a refused request is shown again."""
    if draft is None:
        form = ClaimRequestForm(prefix="claim")
    else:
        form = ClaimRequestForm(prefix="claim", formdata=MultiDict(draft["form"]))
        for name, errors in draft.get("errors", {}).items():
            if name in form._fields:
                form._fields[name].errors = list(errors)
    firms = organisations_of(user_id, kind="implementor")
    form.organisation_id.choices = as_choices([("", _("Myself"))] + [(str(o.id), o.name) for o in firms])
    return form


def claim_draft(form: ClaimRequestForm, error: str) -> dict:
    """What a refused claim request keeps for the item page to show once: the
    fields as typed (not the CSRF token), their errors, and the message above them."""
    return {"form": [(name, value) for name, value in request.form.items(multi=True)
                     if name.startswith(form._prefix) and not name.endswith("csrf_token")],
            "errors": {name: [str(e) for e in field.errors] for name, field in form._fields.items() if field.errors},
            "error": error}


def reassign_form(claim: Claim) -> ReassignForm:
    """The reassign form (prefix ``reassign``), its list the other implementors who asked for the item."""
    form = ReassignForm(prefix="reassign")
    form.to_user_id.choices = as_choices(
        [("", _("Nobody from this list"))] + [(str(u.id), u.display_name) for u in reassign_candidates(claim)])
    return form


def certification_form(prefix: str = "cert") -> CertificationForm:
    """The certification form; shown (GET) with the default expiry filled in."""
    form = CertificationForm(prefix=prefix)
    if form.expires_on.data is None and request.method == "GET":
        form.expires_on.data = default_expiry()
    return form

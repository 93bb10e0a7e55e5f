"""Account forms (CSRF by Flask-WTF on every one)."""
from babel import Locale
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    Length,
    Optional,
    ValidationError,
)

from marketplace.i18n import country_codes

PASSWORD_MIN = 12


def as_choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


class LoginForm(FlaskForm):
    """E-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


def _password_field(label):
    return PasswordField(label, validators=[
        DataRequired(), Length(min=PASSWORD_MIN, max=1024,
                               message=_l("Use at least %(num)d characters.", num=PASSWORD_MIN))])


class SignupForm(FlaskForm):
    """A new account; the e-mail address is verified by a link."""

    display_name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=320)])
    password = _password_field(_l("Password"))
    is_funder = BooleanField(_l("I want to fund work"))
    is_implementor = BooleanField(_l("I want to do paid work"))


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=320)])


class ResetForm(FlaskForm):
    password = _password_field(_l("New password"))
    confirm = PasswordField(_l("New password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    password = _password_field(_l("New password"))
    confirm = PasswordField(_l("New password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


class EmailChangeForm(FlaskForm):
    email = EmailField(_l("New e-mail"), validators=[DataRequired(), Email(), Length(max=320)])
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])


class RolesForm(FlaskForm):
    display_name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    is_funder = BooleanField(_l("I fund work"))
    is_implementor = BooleanField(_l("I do paid work"))


def country_choices() -> list[tuple[str, str]]:
    """ISO 3166-1 alpha-2 codes of real countries (:func:`country_codes`) with their names in the
    current locale (Babel/CLDR)."""
    territories = Locale.parse(str(get_locale())).territories
    codes = sorted((code for code in country_codes() if code in territories), key=lambda code: territories[code])
    return [("", _l("Not said"))] + [(code, territories[code]) for code in codes]


def _list(max_items: int, max_length: int):
    def check(form, field):
        items = [part.strip() for part in (field.data or "").split(",") if part.strip()]
        if len(items) > max_items or any(len(item) > max_length for item in items):
            raise ValidationError(_l("At most %(n)d entries of at most %(m)d characters.", n=max_items, m=max_length))
    return check


class ProfileForm(FlaskForm):
    """The implementor profile."""

    # No Optional(): it would skip the check that the value is one of the choices.
    country = SelectField(_l("Country"), default="")
    organisation_id = SelectField(_l("Organisation"), coerce=str, default="")
    skills = StringField(_l("Skills (comma-separated)"), validators=[Optional(), Length(max=1000), _list(30, 50)])
    languages = StringField(_l("Languages you work in (comma-separated)"),
                            validators=[Optional(), Length(max=500), _list(20, 40)])
    bio = TextAreaField(_l("About you (Markdown)"), validators=[Optional(), Length(max=5000)])
    public_earnings = BooleanField(_l("Show my earnings on my public profile"))


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=as_choices([("funder", _l("Funder organisation")),
                                                       ("implementor", _l("Implementor firm"))]))
    country = SelectField(_l("Country"), default="")


class MemberForm(FlaskForm):
    email = EmailField(_l("E-mail of the person"), validators=[DataRequired(), Email(), Length(max=320)])


class InviteForm(FlaskForm):
    email = EmailField(_l("E-mail of the co-maintainer"), validators=[DataRequired(), Email(), Length(max=320)])


class MaintainerRequestForm(FlaskForm):
    repository_id = SelectField(_l("Repository you administer"), coerce=str)

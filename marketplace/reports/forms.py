"""Forms of the reports: a statement's period, a new grant, pledges to tag with a grant."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget


class PeriodForm(FlaskForm):
    """A statement's period (UTC dates, both included); read from the query string."""

    class Meta:
        csrf = False  # a GET form: it changes nothing

    start = DateField(_l("From (UTC)"), validators=[Optional()])
    end = DateField(_l("To (UTC, included)"), validators=[Optional()])


class GrantForm(FlaskForm):
    """A new grant of a funder organisation."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    reference = StringField(_l("Reference (your grant number)"), validators=[DataRequired(), Length(max=100)])
    starts_on = DateField(_l("Period starts on (UTC)"), validators=[DataRequired()])
    ends_on = DateField(_l("Period ends on (UTC, included)"), validators=[DataRequired()])
    currency = StringField(_l("Currency (ISO 4217 code)"), validators=[DataRequired(), Length(min=3, max=3)])


class TagForm(FlaskForm):
    """Pledges of the organisation to tag with a grant."""

    pledges = SelectMultipleField(_l("Pledges"), coerce=int, option_widget=CheckboxInput(),
                                  widget=ListWidget(prefix_label=False))

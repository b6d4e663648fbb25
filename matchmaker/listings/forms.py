"""Forms for needs and capabilities: field-level validation with short, translatable messages.

Forms only validate and hand a whitelisted dict to ``operations``; they never touch the database.
"""
from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import (DataRequired, Email, Length, NumberRange, Optional, Regexp,
                                ValidationError)

from ..core.enums import CapabilityKind, CoopMode, HubCity, Industry, Visibility
from ..core.forms import MultiCheckboxField, WholeNumberField, clean_text
from ..core.time import programme_today
from .operations import CAPABILITY_FIELDS, NEED_FIELDS

TEXT_MAX = 5000
SUMMARY_MAX = 1000
#: 1,000,000 万元 = 100 billion CNY; anything larger is a typo (and would overflow some databases)
BUDGET_MAX = 1_000_000


def _required(message):
    return DataRequired(message=message)


def _choose(enum_cls):
    return [("", _l("Choose…"))] + enum_cls.choices()


class ListingForm(FlaskForm):
    """Fields and buttons shared by needs and capabilities."""

    #: the listing's version when the form was loaded: a save over someone else's change is refused
    version = HiddenField()
    organization_id = SelectField(_l("Post on behalf of"), coerce=int)
    title = StringField(_l("Title"), filters=[clean_text], validators=[
        _required(_l("Enter a title.")),
        Length(min=4, max=200, message=_l("The title must be 4 to 200 characters long."))])
    coop_modes = MultiCheckboxField(_l("Cooperation modes"), choices=CoopMode.choices(), validators=[
        _required(_l("Choose at least one cooperation mode."))])
    hub_city = SelectField(_l("Hub city"), choices=_choose(HubCity), validators=[
        _required(_l("Choose a hub city."))])
    region = StringField(_l("District or region"), filters=[clean_text], validators=[
        Optional(), Length(max=100, message=_l("At most 100 characters."))])
    save_draft = SubmitField(_l("Save draft"))
    save_submit = SubmitField(_l("Save and submit"))

    fields_saved: tuple[str, ...] = ()
    nullable_text: tuple[str, ...] = ("region", "hub_city")
    #: what even a draft must have (its NOT NULL columns); the rest may wait until it is submitted
    draft_requires: tuple[str, ...] = ("title",)
    #: set by the view when the listing is (or stays) a draft: "Save draft" then accepts blank required fields
    draft_ok = False

    @property
    def wants_submit(self) -> bool:
        return bool(self.save_submit.data)

    @property
    def saving_draft(self) -> bool:
        return self.draft_ok and not self.wants_submit

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not ok and self.saving_draft:
            for field in self:
                if (field.name not in self.draft_requires and field.errors and field.data in (None, "", [])
                        and any(isinstance(v, DataRequired) for v in field.validators)):
                    field.errors = []  # left blank in a draft: asked for again when it is submitted
            ok = not any(field.errors for field in self)
        return ok

    def listing_data(self) -> dict:
        """The whitelisted values for ``operations`` ("" becomes NULL for optional columns)."""
        data = {}
        for name in self.fields_saved:
            value = self[name].data
            if name in self.nullable_text and value == "":
                value = None
            data[name] = value
        return data


def _text(label, required_message=None, max_len=TEXT_MAX):
    validators = [_required(required_message)] if required_message else [Optional()]
    validators.append(Length(max=max_len, message=_l("At most %(max)d characters.", max=max_len)))
    return TextAreaField(label, filters=[clean_text], validators=validators)


class NeedForm(ListingForm):
    fields_saved = NEED_FIELDS
    nullable_text = ("region", "hub_city", "contact_name", "contact_phone", "contact_email")

    industry = SelectField(_l("Industry"), choices=_choose(Industry), validators=[
        _required(_l("Choose an industry."))])
    background = _text(_l("Background"))
    problems = _text(_l("Key technical problems"), _l("Describe the technical problems to solve."))
    targets = _text(_l("Targets and indicators"), _l("State the technical targets or indicators."))
    budget_min = WholeNumberField(_l("Budget from (10k CNY)"), validators=[
        Optional(), NumberRange(min=0, max=BUDGET_MAX,
                                message=_l("Enter a whole number from 0 to %(max)d.", max=BUDGET_MAX))])
    budget_max = WholeNumberField(_l("Budget up to (10k CNY)"), validators=[
        Optional(), NumberRange(min=0, max=BUDGET_MAX,
                                message=_l("Enter a whole number from 0 to %(max)d.", max=BUDGET_MAX))])
    deadline = DateField(_l("Deadline"), validators=[Optional()])
    visibility = SelectField(_l("Who can see this need"), choices=Visibility.choices(),
                             default=Visibility.PUBLIC.value)
    contact_name = StringField(_l("Contact person"), filters=[clean_text], validators=[
        _required(_l("Enter a contact person.")), Length(max=100, message=_l("At most 100 characters."))])
    contact_phone = StringField(_l("Contact phone"), filters=[clean_text], validators=[
        Optional(), Length(max=40, message=_l("At most 40 characters.")),
        Regexp(r"^[0-9+()\- ]{5,40}$", message=_l("Use digits, spaces, +, - and brackets only."))])
    contact_email = StringField(_l("Contact email"), filters=[clean_text], validators=[
        Optional(), Length(max=254, message=_l("At most 254 characters.")),
        Email(message=_l("Enter a valid email address."))])

    #: the deadline stored before this edit; keeping it unchanged is allowed even once it has passed
    original_deadline: date | None = None

    def validate_budget_max(self, field):
        low = self.budget_min.data
        if field.data is not None and low is not None and not self.budget_min.errors and field.data < low:
            raise ValidationError(_l("The maximum budget cannot be below the minimum."))

    def validate_deadline(self, field):
        if field.data and field.data != self.original_deadline and field.data < programme_today():
            raise ValidationError(_l("The deadline cannot be in the past."))

    draft_requires = ("title", "industry")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        phone, email = self.contact_phone, self.contact_email
        if not self.saving_draft and not phone.data and not email.data and not phone.errors and not email.errors:
            phone.errors = [*phone.errors, _l("Give a phone number or an email address.")]
            ok = False
        return ok


class CapabilityForm(ListingForm):
    fields_saved = CAPABILITY_FIELDS
    nullable_text = ("region", "hub_city", "ip")
    draft_requires = ("title", "kind", "field")

    kind = SelectField(_l("Kind"), choices=_choose(CapabilityKind), validators=[
        _required(_l("Choose what kind of capability this is."))])
    summary = _text(_l("Summary"), _l("Write a short summary."), SUMMARY_MAX)
    description = _text(_l("Description"), _l("Describe the capability."))
    field = SelectField(_l("Field"), choices=_choose(Industry), validators=[
        _required(_l("Choose a field."))])
    trl = WholeNumberField(_l("Technology readiness level (TRL)"), validators=[
        Optional(), NumberRange(min=1, max=9, message=_l("The TRL must be between 1 and 9."))])
    ip = _text(_l("Intellectual property (patent numbers)"), max_len=2000)


class ConfirmForm(FlaskForm):
    """Empty form for POST-only actions (submit, close, delete): carries the CSRF token."""

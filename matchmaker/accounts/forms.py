"""Account forms. Field-level checks live here; business rules (uniqueness, policy) in operations."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (BooleanField, EmailField, PasswordField, RadioField, SelectField, StringField, SubmitField,
                     TextAreaField)
from wtforms.validators import (DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional,
                                ValidationError)

from ..core.enums import HubCity, Industry, Language, Role
from ..core.forms import MultiCheckboxField, WholeNumberField, clean_text
from . import operations as ops


def locale_choices():
    return [("zh_CN", "中文"), ("en", "English")]


def hub_city_choices(blank=None):
    choices = HubCity.choices()
    return [("", blank)] + choices if blank is not None else choices


class PasswordPolicy:
    """Runs the account password policy; ``email_field`` names the field holding the email (or a callable)."""

    def __init__(self, email_field: str | None = "email", email=None):
        self.email_field = email_field
        self.email = email

    def __call__(self, form, field):
        email = self.email() if callable(self.email) else None
        if email is None and self.email_field and self.email_field in form:
            email = form[self.email_field].data
        problems = ops.password_problems(field.data, email)
        if problems:
            raise ValidationError(" ".join(problems))


class RegisterForm(FlaskForm):
    name = StringField(_l("Your name"), filters=[clean_text], validators=[DataRequired(), Length(max=100)])
    email = EmailField(_l("Email"), filters=[clean_text],
                       validators=[DataRequired(), Length(max=254), Email(message=_l("Enter a valid email address."))])
    password = PasswordField(_l("Password"), validators=[DataRequired(), PasswordPolicy()])
    confirm = PasswordField(_l("Repeat the password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords do not match."))])
    locale = SelectField(_l("Preferred language"), choices=locale_choices(), default="zh_CN")
    account_type = RadioField(_l("I am registering as"), default=Role.ENTERPRISE.value, choices=[
        (Role.ENTERPRISE.value, _l("A member of an enterprise with technology needs")),
        (Role.EXPERT.value, _l("An expert or researcher offering capabilities")),
    ], validators=[InputRequired(message=_l("Choose an account type."))])

    # enterprise members
    org_name = StringField(_l("Organization name"), filters=[clean_text], validators=[Optional(), Length(max=200)])
    hub_city = SelectField(_l("Hub city"), choices=hub_city_choices(blank=_l("— choose —")), default="")
    region = StringField(_l("District or region"), filters=[clean_text], validators=[Optional(), Length(max=100)])

    # experts
    title = StringField(_l("Job title"), filters=[clean_text], validators=[Optional(), Length(max=100)])
    affiliation = StringField(_l("Affiliation"), filters=[clean_text], validators=[Optional(), Length(max=200)])
    fields = MultiCheckboxField(_l("Fields of expertise"), choices=Industry.choices())
    languages = MultiCheckboxField(_l("Working languages"), choices=Language.choices(), default=["zh"])
    bio = TextAreaField(_l("Short biography"), filters=[clean_text], validators=[Optional(), Length(max=4000)])

    submit = SubmitField(_l("Create account"))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.account_type.data == Role.ENTERPRISE.value:
            if not self.org_name.data:
                self.org_name.errors.append(_l("Enter your organization's name."))
                ok = False
            elif ops.find_organization(self.org_name.data) is None and not self.hub_city.data:
                self.hub_city.errors.append(_l("Choose the hub city of your organization."))
                ok = False
        elif self.account_type.data == Role.EXPERT.value:
            if not self.fields.data:
                self.fields.errors.append(_l("Choose at least one field of expertise."))
                ok = False
        return ok

    def validate_email(self, field):
        if field.data and ops.email_taken(field.data):
            raise ValidationError(_l("An account with this email already exists. Try logging in."))


class LoginForm(FlaskForm):
    # no format check here: any mistake gets the same generic message
    email = StringField(_l("Email"), filters=[clean_text], validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField(_l("Keep me signed in on this device"))
    submit = SubmitField(_l("Log in"))


class ForgotPasswordForm(FlaskForm):
    email = StringField(_l("Email"), filters=[clean_text], validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Send me a link"))


class ResetPasswordForm(FlaskForm):
    """``email`` (for the policy's "not your email" rule) is given by the view: the link's account."""
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords do not match."))])
    submit = SubmitField(_l("Set the new password"))

    def __init__(self, email: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.validators = [*self.password.validators, PasswordPolicy(email_field=None, email=lambda: email)]


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), PasswordPolicy(email_field=None, email=lambda: current_user.email)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords do not match."))])
    submit = SubmitField(_l("Change password"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Your name"), filters=[clean_text], validators=[DataRequired(), Length(max=100)])
    locale = SelectField(_l("Preferred language"), choices=locale_choices())
    # expert fields (removed for users without an expert profile)
    title = StringField(_l("Job title"), filters=[clean_text], validators=[Optional(), Length(max=100)])
    affiliation = StringField(_l("Affiliation"), filters=[clean_text], validators=[Optional(), Length(max=200)])
    fields = MultiCheckboxField(_l("Fields of expertise"), choices=Industry.choices(),
                                validators=[DataRequired(message=_l("Choose at least one field of expertise."))])
    languages = MultiCheckboxField(_l("Working languages"), choices=Language.choices())
    bio = TextAreaField(_l("Short biography"), filters=[clean_text], validators=[Optional(), Length(max=4000)])
    max_active_pairings = WholeNumberField(
        _l("Active pairings you take on at most"), default=5,
        validators=[InputRequired(), NumberRange(0, 100, message=_l("Between 0 and 100."))])
    submit = SubmitField(_l("Save profile"))

    EXPERT_FIELDS = ("title", "affiliation", "fields", "languages", "bio", "max_active_pairings")

    def drop_expert_fields(self) -> None:
        for name in self.EXPERT_FIELDS:
            del self[name]


class OrganizationForm(FlaskForm):
    name = StringField(_l("Name"), filters=[clean_text], validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("English name"), filters=[clean_text], validators=[Optional(), Length(max=200)])
    hub_city = SelectField(_l("Hub city"), choices=hub_city_choices(blank=_l("— none —")))
    region = StringField(_l("District or region"), filters=[clean_text], validators=[Optional(), Length(max=100)])
    description = TextAreaField(_l("Description"), filters=[clean_text], validators=[Optional(), Length(max=4000)])
    submit = SubmitField(_l("Save organization"))

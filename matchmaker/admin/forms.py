"""Admin forms. Filters are GET forms without CSRF; every change is a POST form with CSRF."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, SubmitField
from wtforms.validators import AnyOf, Length, Optional

from ..core.enums import HubCity, Role
from ..listings.forms import clean_text


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Name or email"), filters=[clean_text], validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Role"), choices=[("", _l("Any role"))] + Role.choices(), default="")
    status = SelectField(_l("Status"), default="", choices=[
        ("", _l("Any status")), ("active", _l("Active")), ("inactive", _l("Deactivated"))])


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    action = StringField(_l("Action starts with"), filters=[clean_text], validators=[Optional(), Length(max=64)])


class GrantRoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=Role.choices())
    hub_city = SelectField(_l("Hub city (coordinators only)"),
                           choices=[("", _l("All hub cities"))] + HubCity.choices(), default="")
    submit = SubmitField(_l("Grant role"))


class ActionForm(FlaskForm):
    """A button-only POST (revoke a role); only the CSRF token is checked."""


class ActiveForm(FlaskForm):
    active = HiddenField(validators=[AnyOf(["0", "1"], message=_l("Unknown status."))])

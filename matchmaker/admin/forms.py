"""Admin forms. Filters are GET forms without CSRF; every change is a POST form with CSRF."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, SubmitField
from wtforms.validators import AnyOf, Length, Optional

from ..core.audit_labels import category_choices
from ..core.enums import HubCity, Role
from ..core.forms import clean_text


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

    #: an action prefix; the page offers categories (``auth.``, ``need.`` …), but any prefix of at most 64
    #: characters from an older link (``?action=need.submitted``) still filters and is added as a choice
    action = SelectField(_l("Kind of action"), filters=[clean_text], validate_choice=False, default="",
                         choices=category_choices(), validators=[Optional(), Length(max=64)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        data = self.action.data
        self.action.choices = category_choices(data if isinstance(data, str) and len(data) <= 64 else None)


class GrantRoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=Role.choices())
    hub_city = SelectField(_l("Hub city (coordinators only)"),
                           choices=[("", _l("All hub cities"))] + HubCity.choices(), default="")
    submit = SubmitField(_l("Grant role"))


class ActionForm(FlaskForm):
    """A button-only POST (revoke a role); only the CSRF token is checked."""


class ActiveForm(FlaskForm):
    active = HiddenField(validators=[AnyOf(["0", "1"], message=_l("Unknown status."))])

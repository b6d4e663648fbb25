"""Voucher forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..listings.forms import FiniteDecimalField, clean_text


class IssueForm(FlaskForm):
    organization_id = SelectField(_l("Enterprise"), coerce=int, validate_choice=True,
                                  validators=[DataRequired(message=_l("Choose an enterprise."))])
    hub_city = SelectField(_l("Issuing hub city"), validators=[DataRequired()])
    amount = FiniteDecimalField(_l("Amount (CNY)"), places=2, validators=[
        DataRequired(message=_l("Give the amount.")),
        NumberRange(min=0.01, max=10**10, message=_l("The amount must be more than zero."))])
    expires_on = DateField(_l("Expires on"), validators=[DataRequired(message=_l("Give an expiry date."))])
    note = StringField(_l("Note"), filters=[clean_text], validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Issue voucher"))


class RedeemForm(FlaskForm):
    pairing_id = SelectField(_l("Signed contract"), coerce=int, validate_choice=False,
                             validators=[DataRequired(message=_l("Choose the contract to pay."))])
    amount = FiniteDecimalField(_l("Amount (CNY)"), places=2, validators=[
        DataRequired(message=_l("Give the amount.")),
        NumberRange(min=0.01, message=_l("The amount must be more than zero."))])
    submit = SubmitField(_l("Redeem"))


class RevokeForm(FlaskForm):
    reason = TextAreaField(_l("Reason for revoking"), filters=[clean_text], validators=[
        DataRequired(message=_l("Give a reason for revoking.")), Length(max=2000)])
    submit = SubmitField(_l("Revoke voucher"))

"""Voucher forms."""
from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..listings.forms import FiniteDecimalField, clean_text


#: Decimal bounds: a float 0.01 is slightly more than Decimal("0.01"), which would refuse one fen
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 10


class IssueForm(FlaskForm):
    organization_id = SelectField(_l("Enterprise"), coerce=int, validate_choice=True,
                                  validators=[DataRequired(message=_l("Choose an enterprise."))])
    hub_city = SelectField(_l("Issuing hub city"), validators=[DataRequired()])
    amount = FiniteDecimalField(_l("Amount (CNY)"), places=2, validators=[
        DataRequired(message=_l("Give the amount.")),
        NumberRange(min=MIN_AMOUNT, message=_l("The amount must be more than zero.")),
        NumberRange(max=MAX_AMOUNT, message=_l("The amount is too large."))])
    expires_on = DateField(_l("Expires on"), validators=[DataRequired(message=_l("Give an expiry date."))])
    note = StringField(_l("Note"), filters=[clean_text], validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Issue voucher"))


class RedeemForm(FlaskForm):
    pairing_id = SelectField(_l("Signed contract"), coerce=int, validate_choice=False,
                             validators=[DataRequired(message=_l("Choose the contract to pay."))])
    amount = FiniteDecimalField(_l("Amount (CNY)"), places=2, validators=[
        DataRequired(message=_l("Give the amount.")),
        NumberRange(min=MIN_AMOUNT, message=_l("The amount must be more than zero.")),
        NumberRange(max=MAX_AMOUNT, message=_l("The amount is too large."))])
    submit = SubmitField(_l("Redeem"))


class RevokeForm(FlaskForm):
    reason = TextAreaField(_l("Reason for revoking"), filters=[clean_text], validators=[
        DataRequired(message=_l("Give a reason for revoking.")), Length(max=2000)])
    submit = SubmitField(_l("Revoke voucher"))

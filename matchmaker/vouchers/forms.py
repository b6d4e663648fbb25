"""Voucher forms."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from ..core.forms import AmountField, clean_text


#: Decimal bounds: a float 0.01 is slightly more than Decimal("0.01"), which would refuse one fen
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 10


def to_the_fen(form, field) -> None:
    """Refuse fractions of a fen (100.005) instead of letting them be rounded away; 100.50 and 100.500 pass."""
    if field.data is None:
        return
    try:
        exact = field.data == field.data.quantize(MIN_AMOUNT)
    except InvalidOperation:  # too many digits: the range check answers that
        return
    if not exact:
        raise ValidationError(_l("Give the amount in CNY with at most two decimals (to the fen)."))


class IssueForm(FlaskForm):
    organization_id = SelectField(_l("Enterprise"), coerce=int, validate_choice=True,
                                  validators=[DataRequired(message=_l("Choose an enterprise."))])
    hub_city = SelectField(_l("Issuing hub city"), validators=[DataRequired()])
    amount = AmountField(_l("Amount (CNY)"), places=2, validators=[
        InputRequired(message=_l("Give the amount.")),
        NumberRange(min=MIN_AMOUNT, message=_l("The amount must be more than zero.")),
        NumberRange(max=MAX_AMOUNT, message=_l("The amount is too large.")), to_the_fen])
    expires_on = DateField(_l("Expires on"), validators=[DataRequired(message=_l("Give an expiry date."))])
    note = StringField(_l("Note"), filters=[clean_text], validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Issue voucher"))


class RedeemForm(FlaskForm):
    pairing_id = SelectField(_l("Signed contract"), coerce=int, validate_choice=False,
                             validators=[DataRequired(message=_l("Choose the contract to pay."))])
    amount = AmountField(_l("Amount (CNY)"), places=2, validators=[
        InputRequired(message=_l("Give the amount.")),
        NumberRange(min=MIN_AMOUNT, message=_l("The amount must be more than zero.")),
        NumberRange(max=MAX_AMOUNT, message=_l("The amount is too large.")), to_the_fen])
    submit = SubmitField(_l("Redeem"))


class RevokeForm(FlaskForm):
    reason = TextAreaField(_l("Reason for revoking"), filters=[clean_text], validators=[
        DataRequired(message=_l("Give a reason for revoking.")), Length(max=2000)])
    submit = SubmitField(_l("Revoke voucher"))

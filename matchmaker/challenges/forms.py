"""Challenge and bid forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..core.forms import FiniteDecimalField, WholeNumberField, clean_text


class ChallengeForm(FlaskForm):
    reward = FiniteDecimalField(_l("Reward (CNY)"), places=2, validators=[
        DataRequired(message=_l("Give the reward.")),
        NumberRange(min=1, max=10**11, message=_l("The reward must be more than zero."))])
    deadline = DateField(_l("Bidding deadline"), validators=[DataRequired(message=_l("Give a deadline."))])
    terms = TextAreaField(_l("Terms"), filters=[clean_text], validators=[
        DataRequired(message=_l("Describe the terms.")), Length(max=5000)])
    submit = SubmitField(_l("Publish challenge"))


class BidForm(FlaskForm):
    approach = TextAreaField(_l("Technical approach"), filters=[clean_text], validators=[
        DataRequired(message=_l("Describe your approach.")), Length(max=10000)])
    team_members = TextAreaField(_l("Team members"), filters=[clean_text], validators=[Optional(),
                                                                                       Length(max=3000)])
    budget = FiniteDecimalField(_l("Budget (CNY)"), places=2, validators=[
        InputRequired(message=_l("Give a budget.")), NumberRange(min=0, max=10**11)])  # 0 is a budget
    timeline_months = WholeNumberField(_l("Timeline (months)"), validators=[
        DataRequired(message=_l("Give a timeline.")),
        NumberRange(min=1, max=120, message=_l("Between 1 and 120 months."))])
    submit = SubmitField(_l("Submit bid"))


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("Reason for cancelling"), filters=[clean_text], validators=[
        DataRequired(message=_l("Give a reason for cancelling.")), Length(max=2000)])
    submit = SubmitField(_l("Cancel challenge"))

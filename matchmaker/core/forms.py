"""Form pieces every domain's forms use: the text filter and the fields that refuse input wtforms would turn
into a server error. Domain forms live beside their domain; only what several of them share lives here."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DecimalField, IntegerField, SelectMultipleField
from wtforms.validators import StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from .money import AmountError, parse_amount


def clean_text(value):
    """Strip surrounding whitespace and NUL characters (PostgreSQL refuses them in text)."""
    if isinstance(value, str):
        return value.replace("\x00", "").strip()
    return value


class WholeNumberField(IntegerField):
    """An IntegerField that refuses numbers too long to compare: wtforms' NumberRange converts the value to a
    float and raised OverflowError (a server error) on inputs such as 10**400."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and abs(self.data) > 2**53:
            self.data = None
            raise ValueError(_l("Expected a whole number."))


class FiniteDecimalField(DecimalField):
    """A DecimalField that refuses NaN and infinities: NumberRange raised ValueError on "sNaN" (a server error)."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(_l("Enter a finite amount."))


class AmountField(FiniteDecimalField):
    """An amount of money read as people write it ("1,200,000", "120万", "¥35,000.50": ``core.money``)."""

    def process_formdata(self, valuelist):
        if not valuelist or not str(valuelist[0]).strip():
            return super().process_formdata(valuelist)
        try:
            self.data = parse_amount(valuelist[0])
        except AmountError:
            self.data = None
            raise ValueError(_l("Enter an amount such as 1200000, 1,200,000 or 120万.")) from None

    def pre_validate(self, form):
        if self.process_errors:  # unreadable: the range checks would only add "must be more than zero"
            raise StopValidation()


class MultiCheckboxField(SelectMultipleField):
    """A multi-select rendered as checkboxes (see the ``checkboxes`` macro)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

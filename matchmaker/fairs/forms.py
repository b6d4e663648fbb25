"""Fair forms. Times are entered in Beijing time (the programme's time zone) and stored in UTC."""
from __future__ import annotations

from datetime import timezone

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectField, StringField, TextAreaField
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional, ValidationError

from ..core.enums import HubCity
from ..core.forms import WholeNumberField, clean_text
from ..core.time import PROGRAMME_TZ
from ..pairings.forms import FIRST_YEAR, LAST_YEAR
from .models import FairMode


def sane_year(form, field):
    """Years outside 2000–2100 are typing mistakes (and 0001 or 9999 overflow when moved to UTC)."""
    if field.data is not None and not FIRST_YEAR <= field.data.year <= LAST_YEAR:
        raise ValidationError(_l("Please enter a date between the years %(first)s and %(last)s.",
                                 first=FIRST_YEAR, last=LAST_YEAR))


def to_utc(value):
    """Beijing time → UTC (the form's ``sane_year`` keeps the value clear of datetime's limits)."""
    return value.replace(tzinfo=PROGRAMME_TZ).astimezone(timezone.utc) if value else None


def from_utc(value):
    return value.astimezone(PROGRAMME_TZ).replace(tzinfo=None) if value else None


class FairForm(FlaskForm):
    title = StringField(_l("Title"), filters=[clean_text], validators=[DataRequired(), Length(4, 200)])
    description = TextAreaField(_l("Description"), filters=[clean_text], validators=[Optional(), Length(max=5000)])
    starts_at = DateTimeLocalField(_l("Starts (Beijing time)"), format="%Y-%m-%dT%H:%M",
                                   validators=[DataRequired(), sane_year])
    ends_at = DateTimeLocalField(_l("Ends (Beijing time)"), format="%Y-%m-%dT%H:%M",
                                 validators=[DataRequired(), sane_year])
    registration_deadline = DateTimeLocalField(_l("Registration deadline (Beijing time)"), format="%Y-%m-%dT%H:%M",
                                               validators=[DataRequired(), sane_year])
    mode = SelectField(_l("Mode"), choices=FairMode.choices(), validators=[DataRequired()])
    place = StringField(_l("Place"), filters=[clean_text], validators=[Optional(), Length(max=300)])
    video_url = StringField(_l("Video link"), filters=[clean_text],
                            validators=[Optional(), URL(require_tld=False), Length(max=500)])
    hub_city = SelectField(_l("Hub city"), choices=[("", "—")] + HubCity.choices(), validators=[Optional()])
    organizer_id = SelectField(_l("Organizer"), coerce=int, validators=[Optional()])
    slot_minutes = WholeNumberField(_l("Minutes per meeting"), default=30, validators=[DataRequired(),
                                                                                  NumberRange(5, 240)])
    tables = WholeNumberField(_l("Tables"), default=10, validators=[DataRequired(), NumberRange(1, 500)])

    def data_for_ops(self) -> dict:
        return {
            "title": self.title.data, "description": self.description.data or "",
            "starts_at": to_utc(self.starts_at.data), "ends_at": to_utc(self.ends_at.data),
            "registration_deadline": to_utc(self.registration_deadline.data), "mode": self.mode.data,
            "place": self.place.data or None, "video_url": self.video_url.data or None,
            "hub_city": self.hub_city.data or None, "organizer_id": self.organizer_id.data or None,
            "slot_minutes": self.slot_minutes.data, "tables": self.tables.data,
        }

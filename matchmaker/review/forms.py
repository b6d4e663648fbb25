"""Moderation forms. Each carries the listing version the coordinator saw, so a stale decision is refused."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..core.forms import clean_text

COMMENT_MAX = 2000


class PublishForm(FlaskForm):
    version = HiddenField()
    comment = TextAreaField(_l("Comment (optional)"), filters=[clean_text], validators=[
        Optional(), Length(max=COMMENT_MAX, message=_l("At most %(max)d characters.", max=COMMENT_MAX))])
    publish = SubmitField(_l("Publish"))


class ReturnForm(FlaskForm):
    version = HiddenField()
    reason = TextAreaField(_l("Reason for returning"), filters=[clean_text], validators=[
        DataRequired(message=_l("Tell the owner what to change.")),
        Length(max=COMMENT_MAX, message=_l("At most %(max)d characters.", max=COMMENT_MAX))])
    send_back = SubmitField(_l("Return to owner"))

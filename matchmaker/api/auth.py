"""API authentication: personal bearer tokens (create, revoke, resolve) and the token form.

State changes follow the service-layer pattern: check → mutate → ``audit.record`` → flush; the caller commits.
"""
from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from ..accounts.tokens import MAX_ACTIVE_TOKENS, TOKEN_PREFIX, ApiToken, hash_token
from ..core import audit
from ..core.forms import clean_text
from ..core.time import utcnow
from ..core.workflow import WorkflowError
from ..extensions import db

#: how often ``last_used_at`` is written at most (one write per request would be wasteful)
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: a token is "mmk_" + 43 url-safe characters; anything much longer is not one of ours
MAX_TOKEN_LENGTH = 200

EXPIRY_CHOICES = [("30", _l("In 30 days")), ("90", _l("In 90 days")), ("365", _l("In one year")),
                  ("never", _l("Never"))]


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), filters=[clean_text], validators=[
        DataRequired(message=_l("Give the token a name, e.g. the script that will use it.")),
        Length(max=100, message=_l("At most 100 characters."))])
    expires_in = SelectField(_l("Expires"), choices=EXPIRY_CHOICES, default="90")
    submit = SubmitField(_l("Create token"))

    @property
    def expires_in_days(self) -> int | None:
        return None if self.expires_in.data == "never" else int(self.expires_in.data)


def active_tokens(user):
    now = utcnow()
    return (select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .where((ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now)))


def create_token(user, name: str, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the secret (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise WorkflowError(_("Give the token a name of at most 100 characters."), 400)
    live = db.session.scalar(select(func.count()).select_from(active_tokens(user).subquery()))
    if live >= MAX_ACTIVE_TOKENS:
        raise WorkflowError(_("You already have %(n)d active tokens. Revoke one you no longer use first.",
                              n=MAX_ACTIVE_TOKENS), 409)
    token, secret = ApiToken.generate(user, name, expires_in_days)
    db.session.add(token)
    db.session.flush()
    audit.record("api_token.create", actor=user, target=token, comment=f"{name} ({token.prefix}…)")
    return token, secret


def revoke_token(token: ApiToken, user) -> None:
    """Revoke one of ``user``'s tokens (administrators may revoke anyone's)."""
    if token.user_id != user.id and not user.is_admin:
        raise WorkflowError(_("This token is not yours."), 404)
    if token.revoked_at is not None:
        raise WorkflowError(_("This token was already revoked."), 409)
    token.revoked_at = utcnow()
    audit.record("api_token.revoke", actor=user, target=token, comment=f"{token.name} ({token.prefix}…)")
    db.session.flush()


def user_from_authorization(header: str) -> tuple[object | None, str]:
    """Resolve an ``Authorization`` header to an active user; (None, reason) when it must be refused."""
    scheme, _sep, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None, _("Use the header “Authorization: Bearer <token>”.")
    if len(value) > MAX_TOKEN_LENGTH or not value.startswith(TOKEN_PREFIX):
        return None, _("The API token is invalid.")
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(value)))
    if token is None:
        return None, _("The API token is invalid.")
    if token.revoked_at is not None:
        return None, _("The API token was revoked.")
    if token.is_expired:
        return None, _("The API token has expired.")
    user = token.user
    if user is None or not user.is_active:
        return None, _("The account of this API token is deactivated.")
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()  # its own small transaction, before the request's work
    return user, ""


class RevokeForm(FlaskForm):
    """Empty form for the revoke button: carries the CSRF token."""

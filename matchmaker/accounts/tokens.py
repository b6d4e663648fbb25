"""Personal API tokens: ``Authorization: Bearer <token>`` for the JSON API (``/api/v1``).

Only a SHA-256 hash of the token is stored; the secret is shown once, when the token is created. A token
works while it is neither revoked nor expired and its user is active; every use stamps ``last_used_at``.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.time import UTCDateTime, utcnow
from ..extensions import db

#: every token starts with this, so leaked tokens are easy to recognise (secret scanners, logs)
TOKEN_PREFIX = "mmk_"
#: characters of the token kept in clear for display ("mmk_Ab3dE9xQ…")
DISPLAY_CHARS = 12
#: a user's live tokens; more is almost always a forgotten script
MAX_ACTIVE_TOKENS = 20


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiToken(db.Model):
    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("length(token_hash) = 64", name="hash_is_sha256"),
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        CheckConstraint("expires_at IS NULL OR expires_at > created_at", name="expires_after_creation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    #: sha256 hex digest of the whole token; the token itself is never stored
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: the first characters of the token, to recognise it in the list
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User")

    @classmethod
    def generate(cls, user, name: str, expires_in_days: int | None = None) -> tuple["ApiToken", str]:
        """A new token row (not yet added to the session) and its secret, to be shown once."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
        now = utcnow()
        token = cls(user_id=user.id, name=name, token_hash=hash_token(secret), prefix=secret[:DISPLAY_CHARS],
                    created_at=now,
                    expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None)
        return token, secret

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}… user={self.user_id}>"

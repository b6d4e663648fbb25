"""Who is who, as queries other domains ask."""
from __future__ import annotations

from sqlalchemy import select

from ..core.enums import Role
from ..extensions import db
from .models import User, UserRole


def coordinators() -> list[User]:
    """Every account with the coordinator role, oldest first; callers narrow it with ``coordinator_scope``
    or a ``can_*`` rule."""
    return list(db.session.scalars(select(User).join(UserRole).where(UserRole.role == Role.COORDINATOR.value)
                                   .order_by(User.id)).unique())

"""Queries that encode who may see which listing, so every list view applies the same rule."""
from __future__ import annotations

from sqlalchemy import Select, or_, select

from ..core.enums import ListingStatus, Visibility
from .models import Need


def visible_listings(model, user) -> Select:
    """Published, not deleted listings ``user`` may see (coordinators-only needs need a coordinator or owner)."""
    stmt = select(model).where(model.status == ListingStatus.PUBLISHED, model.deleted_at.is_(None))
    if model is Need and not (getattr(user, "is_authenticated", False) and user.is_coordinator):
        own = list(user.organization_ids) if getattr(user, "is_authenticated", False) else []
        stmt = stmt.where(or_(Need.visibility == Visibility.PUBLIC, Need.organization_id.in_(own)))
    return stmt


def owned_listings(model, user) -> Select:
    """Listings created by ``user`` or by one of their organizations, deleted ones excluded."""
    conds = [model.created_by_id == user.id]
    if user.organization_ids:
        conds.append(model.organization_id.in_(list(user.organization_ids)))
    return select(model).where(or_(*conds), model.deleted_at.is_(None)).order_by(model.updated_at.desc())

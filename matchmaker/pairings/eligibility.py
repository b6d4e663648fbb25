"""Who may be matched with whom, as SQL: the same rules as ``operations.check_pairable``, for the match
queries (``suggestions.queries``) and the match memo's key (``suggestions.cache``)."""
from __future__ import annotations

from sqlalchemy import and_, literal, or_, select, union

from ..extensions import db

# The pairing rules (pairings.assignment.build_candidates "same_org"/"conflict", pairings.operations.
# check_pairable) as SQL, so that nothing is suggested that a pairing would refuse: a need is never matched
# with a capability of its own organization, nor with an expert who works for that organization (affiliation)
# or declared a conflict of interest with it, nor where one person could answer for both sides.
# tests/matching_service/test_matching_app.py checks both sides agree.

def experts_excluded_for(organization_id: int):
    """SELECT of the expert profile ids that may not be matched or paired with this organization's needs."""
    from ..accounts.models import ExpertProfile
    from .models import ConflictOfInterest
    return union(
        select(ExpertProfile.id).where(ExpertProfile.affiliation_id == organization_id),
        select(ConflictOfInterest.expert_id).where(ConflictOfInterest.organization_id == organization_id))


def organizations_excluded_for(expert_id: int):
    """SELECT of the organization ids whose needs this expert may not be matched or paired with."""
    from ..accounts.models import ExpertProfile
    from .models import ConflictOfInterest
    return union(
        select(ExpertProfile.affiliation_id).where(ExpertProfile.id == expert_id,
                                                   ExpertProfile.affiliation_id.is_not(None)),
        select(ConflictOfInterest.organization_id).where(ConflictOfInterest.expert_id == expert_id))


def excluded_expert_ids(need) -> tuple[int, ...]:
    """The experts ``matchable_capabilities(need)`` leaves out (sorted): part of the match memo's key."""
    if need.organization_id is None:
        return ()
    return tuple(sorted(db.session.scalars(experts_excluded_for(need.organization_id))))


def need_side_user_ids(need):
    """SELECT of everyone who may answer for ``need``: its poster and its organization's members
    (``pairings.operations.need_side_people``)."""
    from ..accounts.models import Membership
    poster = select(literal(need.created_by_id or 0).label("user_id"))
    if need.organization_id is None:
        return poster
    return union(poster, select(Membership.user_id).where(Membership.organization_id == need.organization_id))


def matchable_capabilities(need):
    """SQL condition on ``Capability``: it may be matched with (and proposed for) ``need``."""
    from ..accounts.models import ExpertProfile, Membership
    from ..listings.models import Capability
    people = need_side_user_ids(need)
    # nobody may answer for both sides: not the poster of the capability, its expert, or a member of its
    # organization (pairings.operations.check_pairable, "same person")
    conds = [or_(Capability.created_by_id.is_(None), Capability.created_by_id.not_in(people)),
             or_(Capability.expert_id.is_(None), Capability.expert_id.not_in(
                 select(ExpertProfile.id).where(ExpertProfile.user_id.in_(people)))),
             or_(Capability.organization_id.is_(None), Capability.organization_id.not_in(
                 select(Membership.organization_id).where(Membership.user_id.in_(people))))]
    if need.organization_id is not None:
        # NOT IN is NULL (false) for a NULL column: capabilities without an organization or expert stay in
        conds += [or_(Capability.organization_id.is_(None), Capability.organization_id != need.organization_id),
                  or_(Capability.expert_id.is_(None),
                      Capability.expert_id.not_in(experts_excluded_for(need.organization_id)))]
    return and_(*conds)


def matchable_needs(user):
    """SQL condition on ``Need``: it may be suggested to ``user`` (as a member of their organizations and as
    the expert they are)."""
    from ..accounts.models import Membership
    from ..listings.models import Need
    # the user and the members of their organizations answer for the user's capabilities: a need whose firm
    # has one of them as a member (or that one of them posted) would pair someone with themselves
    people = union(select(literal(user.id).label("user_id")),
                   select(Membership.user_id).where(Membership.organization_id.in_(user.organization_ids or [0])))
    conds = [Need.organization_id.not_in(select(Membership.organization_id).where(Membership.user_id.in_(people)))]
    if user.expert_profile is not None and user.expert_profile.id is not None:
        conds.append(Need.organization_id.not_in(organizations_excluded_for(user.expert_profile.id)))
    return and_(or_(Need.created_by_id.is_(None), Need.created_by_id.not_in(people)),
                or_(Need.organization_id.is_(None), and_(*conds)))

"""Do the expert-facing surfaces honour the confidence floor: the suggested needs (/suggestions, the digest)
and the invitations to bid on a challenge? (real model; slow)"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from matchmaker.challenges import operations as challenge_ops
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.pairings.cli import send_digests
from matchmaker.suggestions import queries
from tests.helpers import BRINE_CAP, BRINE_NEED, FILLERS, login, notes_of, unrelated_pool

pytestmark = pytest.mark.slow


def test_an_expert_is_suggested_no_weak_need(floor, make, world, app):
    """Among needs about nothing the expert does, is only the one their capability solves suggested, on
    /suggestions and in the digest?"""
    make.capability(world["expert"], **BRINE_CAP)
    need = make.need(world["enterprise"], **BRINE_NEED)
    unrelated = [make.need(world["other_enterprise"], title=t, problems=d, targets=d, background=d,
                           industry="smart_manufacturing") for t, d in FILLERS]
    suggested = [s.listing.id for s in queries.needs_for_user(world["expert"], k=10)[0]]
    assert suggested == [need.id]
    html = login(app.test_client(), world["expert"]).get("/suggestions").get_data(as_text=True)
    assert f'data-id="{need.id}"' in html and not any(f'data-id="{n.id}"' in html for n in unrelated)
    send_digests(now=utcnow() + timedelta(minutes=1))
    digest = [n for n in notes_of(world["expert"]) if n.kind == "digest.needs"]
    assert len(digest) == 1 and f"/needs/{need.id}" in digest[0].body
    assert not any(f"/needs/{n.id}\n" in digest[0].body + "\n" for n in unrelated)


def test_a_challenge_invites_no_expert_of_a_weak_match(floor, make, world):
    """Are only the experts behind matches above the floor invited to bid, not those of unrelated ones?"""
    need = make.need(world["enterprise"], **BRINE_NEED)
    make.capability(world["expert"], **BRINE_CAP)
    bystander = make.user(Role.EXPERT, org=make.org(kind="institute"))
    unrelated_pool(make, bystander)
    challenge = challenge_ops.publish_challenge(need, world["enterprise"], reward=Decimal("100000"),
                                                deadline=utcnow() + timedelta(days=30), terms="交付样品。")
    db.session.commit()
    assert challenge_ops.invite_matching_experts(challenge, world["enterprise"]) == 1
    assert [n.kind for n in notes_of(world["expert"])] == ["challenge.invite"]
    assert notes_of(bystander) == []

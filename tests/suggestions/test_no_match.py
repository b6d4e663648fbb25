""""No good match yet": the firm may ask its hub city's coordinators for help (the engine stays off here:
tests/suggestions/test_match_floor.py covers the pages with the real engine)."""
from __future__ import annotations

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from tests.helpers import notes_of


def test_asking_the_coordinators_tells_those_of_the_needs_hub_city(make, world, client_as):
    """Does the firm's request reach the coordinators whose scope covers the need's hub city (and those
    without a scope), not those of another city, with an audit entry?"""
    need = make.need(world["enterprise"], hub_city="chongqing")
    here = make.user(Role.COORDINATOR, hub_city="chongqing")
    elsewhere = make.user(Role.COORDINATOR, hub_city="chengdu")
    response = client_as("enterprise").post(f"/needs/{need.id}/ask-coordinators?lang=en")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/needs/{need.id}/matches")
    assert [n.kind for n in notes_of(here)] == ["need.no_match"]
    assert [n.kind for n in notes_of(world["coordinator"])] == ["need.no_match"]  # unscoped: every city
    assert notes_of(elsewhere) == []
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "need.ask_coordinators")).one()
    assert (event.actor_id, event.target_id) == (world["enterprise"].id, need.id)


def test_only_the_firm_may_ask_the_coordinators(make, world, client_as):
    """Is the request refused (403) to someone who does not speak for the need, and (login) to a visitor?"""
    need = make.need(world["enterprise"])
    assert client_as("other_enterprise").post(f"/needs/{need.id}/ask-coordinators").status_code == 403
    assert client_as(None).post(f"/needs/{need.id}/ask-coordinators").status_code in (302, 401)
    assert notes_of(world["coordinator"]) == []


def test_asking_twice_in_a_week_tells_the_coordinators_once(make, world, client_as):
    """Does a second request soon after the first say so instead of notifying the coordinators again?"""
    need = make.need(world["enterprise"])
    firm = client_as("enterprise")
    firm.post(f"/needs/{need.id}/ask-coordinators?lang=en")
    response = firm.post(f"/needs/{need.id}/ask-coordinators?lang=en", follow_redirects=True)
    assert "were asked about this need a short while ago" in response.get_data(as_text=True)
    assert [n.kind for n in notes_of(world["coordinator"])] == ["need.no_match"]

"""Do the shared fixtures give isolated, signed-in clients and rolled-back data?"""
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings.models import Need


def test_factory_need_is_published(make, world):
    """Does the factory walk a need through submit and publish?"""
    need = make.need(world["enterprise"])
    assert need.status == "published" and need.published_at is not None


def test_rows_do_not_leak_between_tests():
    """Is the previous test's need gone (rolled back)?"""
    assert db.session.scalar(db.select(db.func.count(Need.id))) == 0


def test_clients_are_isolated(client_as, world):
    """Does a signed-in client see its user, and an anonymous one not, in the same test?"""
    signed_in = client_as("coordinator")
    assert world["coordinator"].name.encode() in signed_in.get("/").data
    anonymous = client_as(None)
    assert world["coordinator"].name.encode() not in anonymous.get("/").data
    assert world["coordinator"].has_role(Role.COORDINATOR)

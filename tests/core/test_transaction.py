"""The request's transaction has one owner: ``core.transaction`` rolls back and answers refusals and lost races."""
from __future__ import annotations

import pytest
from flask import get_flashed_messages
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from matchmaker.accounts.models import Organization
from matchmaker.core.transaction import STAY, LostRace, commit, transaction
from matchmaker.core.workflow import WorkflowError, after_commit
from matchmaker.extensions import db
from matchmaker.listings.models import Need

RACE = LostRace(stale="Changed meanwhile.", duplicate="Written twice.")


def _orgs_named(name: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Organization).where(Organization.name == name))


def _answer(view):
    """What the view answers: the response it returns, or the one an abort carries (status, location)."""
    try:
        resp = view()
    except HTTPException as exc:
        resp = exc.response if exc.response is not None else exc
        return getattr(resp, "status_code", None) or exc.code, getattr(resp, "location", None), exc.description
    return resp


def _stale(need: Need) -> None:
    """Another request commits a change to ``need`` first: its version moves on behind this session."""
    db.session.execute(update(Need.__table__).where(Need.__table__.c.id == need.id)
                       .values(version=Need.__table__.c.version + 1))
    need.title = "mine"


def test_refused_operation_leaves_nothing_written(app):
    """Is a refused operation's flushed work rolled back, its reason flashed and the page sent back (303)?"""
    @transaction("/back")
    def view():
        db.session.add(Organization(name="refused-org", kind="enterprise", hub_city="chongqing"))
        db.session.flush()
        raise WorkflowError("Not now.", 409)

    with app.test_request_context("/x", method="POST"):
        assert _answer(view)[:2] == (303, "/back")
        assert get_flashed_messages(with_categories=True) == [("error", "Not now.")]
        assert _orgs_named("refused-org") == 0


def test_refusal_status_aborts_where_the_page_says(app):
    """Does a 403 abort with the reason, and does a view without a way back answer with the refusal's status?"""
    @transaction("/back")
    def forbidden():
        raise WorkflowError("Not yours.", 403)

    @transaction()
    def nowhere_to_go():
        raise WorkflowError("Bad value.", 400)

    with app.test_request_context("/x", method="POST"):
        assert _answer(forbidden) == (403, None, "Not yours.")
        assert _answer(nowhere_to_go) == (400, None, "Bad value.")
        assert get_flashed_messages() == []


def test_lost_race_in_the_operation_and_at_the_commit_answer_alike(app, make, world):
    """Does a stale write give the domain's 409 whether it surfaces in the operation's flush or at commit()?"""
    need = make.need(world["enterprise"])
    race_409 = LostRace(stale="Changed meanwhile.", abort=True)

    @transaction("/back", lost=race_409)
    def flushes():
        _stale(need)
        db.session.flush()
        commit()

    @transaction("/back", lost=race_409)
    def at_commit():
        _stale(need)
        commit()

    for view in (flushes, at_commit):
        with app.test_request_context("/x", method="POST"):
            assert _answer(view) == (409, None, "Changed meanwhile.")
            assert db.session.get(Need, need.id).title != "mine"


def test_lost_race_flashes_and_goes_back(app, make, world):
    """Without ``abort``, is a lost race flashed in the domain's words and sent to ``lost_back``?"""
    need = make.need(world["enterprise"])

    @transaction("/refused", lost=RACE, lost_back="/lost")
    def view():
        _stale(need)
        commit()

    with app.test_request_context("/x", method="POST"):
        assert _answer(view)[:2] == (303, "/lost")
        assert get_flashed_messages(with_categories=True) == [("warning", "Changed meanwhile.")]


def test_duplicate_gets_its_own_wording(app, world):
    """Is a unique-constraint race (IntegrityError) answered with the domain's 'duplicate' message?"""
    with app.test_request_context("/x", method="POST"):
        with transaction(lost=RACE, lost_back=STAY) as tx:
            db.session.add(Organization(name=world["firm"].name, kind="enterprise"))  # the name is unique
            commit()
        assert tx.failed and tx.status == 409
        assert get_flashed_messages(with_categories=True) == [("warning", "Written twice.")]


def test_page_shows_its_form_again(app):
    """In a ``with`` block without a way back, does the refusal stay on the page (status, field error)?"""
    from matchmaker.accounts.forms import ChangePasswordForm
    from matchmaker.accounts.operations import FieldError
    refusal = FieldError("password", "Too short.")

    with app.test_request_context("/x", method="POST"):
        form = ChangePasswordForm()
        with transaction(form=form, abort_on=()) as tx:
            raise refusal
        assert tx.failed and tx.status == 400 and tx.refusal is refusal
        assert form["password"].errors == ["Too short."]
        assert get_flashed_messages() == []  # shown next to its field, not on top


def test_no_race_handling_without_the_domains_words(app, make, world):
    """Without ``lost``, does a lost race pass through (to an outer transaction or the 500 handler)?"""
    need = make.need(world["enterprise"])

    with app.test_request_context("/x", method="POST"):
        with pytest.raises(StaleDataError), transaction("/back"):
            _stale(need)
            commit()
        db.session.rollback()


def test_post_commit_hooks_run_only_after_a_commit(app):
    """Is a hook registered by a refused operation dropped, while one after a commit runs?"""
    ran = []

    @transaction("/back")
    def refused():
        after_commit(db.session(), lambda: ran.append("refused"))
        raise WorkflowError("No.", 409)

    @transaction("/back")
    def committed():
        after_commit(db.session(), lambda: ran.append("committed"))
        commit()
        return "ok"

    with app.test_request_context("/x", method="POST"):
        _answer(refused)
        commit()  # a later commit in the same session must not run the dropped hook
        assert committed() == "ok"
    assert ran == ["committed"]


def test_back_endpoint_takes_the_views_arguments(app):
    """Does an endpoint as ``back`` get its URL arguments from the view's (and only those it takes)?"""
    @transaction("challenges.detail")
    def view(challenge_id, bid_id):
        raise WorkflowError("No.", 409)

    with app.test_request_context("/challenges/7/bids/9/award", method="POST"):  # view_args from the URL
        status, location, _ = _answer(lambda: view(7, 9))
        assert (status, location) == (303, "/challenges/7")

"""The rendered-page cache (core.pagecache) and the data version it keys on (core.data_version)."""
from __future__ import annotations

import pytest

from matchmaker.accounts import operations as account_ops
from matchmaker.accounts.sessions import LOGIN_AT, SEEN_AT
from matchmaker.core import data_version, pagecache
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops

from tests.helpers import Factory, login


def _view(client, url):
    """GET ``url`` and return (cache header, page text)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.headers.get(pagecache.HEADER), response.get_data(as_text=True)


def _settled(client):
    """A signed-in client whose session has had its first request (timeout stamps set)."""
    client.get("/needs")
    return client


@pytest.fixture
def firm_and_need(make, world):
    need = make.need(world["enterprise"], title="高温合金叶片涂层开裂")
    return world["enterprise"], need


def test_repeat_view_is_served_from_the_cache(client_as, firm_and_need):
    """Is a second view of the same listing page answered from the cache, with the same page?"""
    _firm, need = firm_and_need
    client = _settled(client_as("expert"))
    first = _view(client, f"/needs/{need.id}")
    second = _view(client, f"/needs/{need.id}")
    assert first[0] == "miss" and second[0] == "hit"
    assert second[1] == first[1] and "高温合金叶片涂层开裂" in second[1]


def test_an_edit_shows_on_the_next_view(client_as, firm_and_need):
    """After the owner edits a need, does the next view show the change instead of the cached page?"""
    firm, need = firm_and_need
    owner, expert = _settled(client_as("enterprise")), _settled(client_as("expert"))
    for client in (owner, expert):
        _view(client, f"/needs/{need.id}")
        assert _view(client, f"/needs/{need.id}")[0] == "hit"
    ops.update_listing(need, firm, {"title": "单晶叶片热障涂层剥落"})  # back to review: unpublished
    db.session.commit()
    state, page = _view(owner, f"/needs/{need.id}")
    assert state == "miss" and "单晶叶片热障涂层剥落" in page and "高温合金叶片涂层开裂" not in page
    assert expert.get(f"/needs/{need.id}").status_code == 404


def test_a_page_is_never_served_to_another_session(app, client_as, world, firm_and_need):
    """Does a page cached for one signed-in user stay away from another user and from a visitor?"""
    firm, need = firm_and_need
    owner = _settled(client_as("enterprise"))
    _view(owner, f"/needs/{need.id}")
    owner_page = _view(owner, f"/needs/{need.id}")
    assert owner_page[0] == "hit" and firm.name in owner_page[1]
    other = _settled(client_as("other_enterprise"))
    state, page = _view(other, f"/needs/{need.id}")
    assert state == "miss" and firm.name not in page and world["other_enterprise"].name in page
    visitor = app.test_client()
    state, page = _view(visitor, f"/needs/{need.id}")
    assert state is None or state == "miss"
    assert firm.name not in page


def test_logout_makes_a_copied_cookie_see_no_cached_page(app, make, world, firm_and_need):
    """After logout, does a copy of the old session cookie get a signed-out page, not the cached one?"""
    user = world["expert"]
    _firm, need = firm_and_need
    client = _settled(login(app.test_client(), user))
    _view(client, f"/needs/{need.id}")
    assert _view(client, f"/needs/{need.id}")[0] == "hit"
    copy = app.test_client()
    with client.session_transaction() as old, copy.session_transaction() as stolen:
        stolen.update(old)
    account_ops.record_logout(user)  # what the logout view does: rotates the session token
    db.session.commit()
    state, page = _view(copy, f"/needs/{need.id}")
    assert state != "hit" and user.name not in page


def test_an_expired_session_is_not_answered_from_the_cache(app, client_as, firm_and_need):
    """With a cached page waiting, does an idle-expired session still get sent to the login page?"""
    _firm, need = firm_and_need
    client = _settled(client_as("expert"))
    _view(client, f"/needs/{need.id}")
    assert _view(client, f"/needs/{need.id}")[0] == "hit"
    with client.session_transaction() as session:
        session[SEEN_AT] -= app.config["SESSION_IDLE_MINUTES"] * 60 + 5
        session[LOGIN_AT] = min(session[LOGIN_AT], session[SEEN_AT])
    response = client.get(f"/needs/{need.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert response.headers.get(pagecache.HEADER) != "hit"


def test_flashed_messages_and_new_cookies_are_not_cached(app, client_as, firm_and_need):
    """Is a page that shows a flash, or that sets a cookie, rendered afresh rather than replayed?"""
    _firm, need = firm_and_need
    client = _settled(client_as("expert"))
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "一次性提示")]
    state, page = _view(client, f"/needs/{need.id}")
    assert state is None and "一次性提示" in page  # flashes pending: not even looked up
    state, page = _view(client, f"/needs/{need.id}")
    assert "一次性提示" not in page
    fresh = app.test_client()  # first visit: the session (language, CSRF) is new and goes out as a cookie
    response = fresh.get(f"/needs/{need.id}?lang=en")
    if "Set-Cookie" in response.headers:
        assert fresh.get(f"/needs/{need.id}?lang=en").headers.get(pagecache.HEADER) != "hit"


def test_the_match_page_follows_the_index_versions(app, client_as, firm_and_need, monkeypatch):
    """When this process's match index moves to a new version, is the match page rendered again?"""
    versions = {"seq": 1}
    sources = app.extensions[pagecache.SOURCES_KEY]
    # what matching_service.index_versions() gives (model id, sequence applied); matching is off here
    monkeypatch.setitem(app.extensions, pagecache.SOURCES_KEY, pagecache._Sources(
        lambda: ("vectors", "model", versions["seq"]), sources.session_settled))
    _firm, need = firm_and_need
    client = _settled(client_as("coordinator"))
    url = f"/needs/{need.id}/matches"
    assert [_view(client, url)[0] for _ in range(2)] == ["miss", "hit"]
    versions["seq"] = 2
    assert [_view(client, url)[0] for _ in range(2)] == ["miss", "hit"]


def test_data_version_moves_with_committed_writes_only(make, world):
    """Does the data version move on a committed change, and stay put for reads and rolled-back work?"""
    start = data_version.current()
    db.session.commit()  # nothing changed
    assert data_version.current() == start
    make.org(name="新公司")
    after_write = data_version.current()
    assert after_write > start
    world["expert"].name = "改名专家"
    db.session.rollback()
    assert data_version.current() == after_write
    db.session.execute(db.update(type(world["expert"])).where(type(world["expert"]).id == world["expert"].id)
                       .values(name="批量改名"))
    db.session.commit()
    assert data_version.current() == after_write + 1


@pytest.mark.nodb
def test_store_keeps_within_its_byte_budget_and_expires_entries():
    """Does the store evict the least recently used pages past its budget, and drop expired ones?"""
    store = pagecache.PageStore(max_bytes=800)
    for i in range(10):
        store.put(("k", i), pagecache._Entry(b"x" * 100, "text/html", expires=100.0))
    assert len(store) == 8 and store.get(("k", 0), now=1.0) is None and store.get(("k", 9), now=1.0)
    assert store.get(("k", 9), now=100.0) is None  # expired
    store.put(("big",), pagecache._Entry(b"x" * 200, "text/html", expires=100.0))
    assert store.get(("big",), now=1.0) is None  # larger than an eighth of the budget: never kept


def test_cache_off_serves_every_view_fresh(app, client_as, firm_and_need, monkeypatch):
    """With PAGE_CACHE off, is no page looked up or stored?"""
    monkeypatch.setitem(app.config, "PAGE_CACHE", False)
    _firm, need = firm_and_need
    client = _settled(client_as(Role.EXPERT.value))
    assert _view(client, f"/needs/{need.id}")[0] is None
    assert _view(client, f"/needs/{need.id}")[0] is None


def test_committed_writes_reach_a_server_without_the_test_transaction(fresh_app):
    """On a database written by ordinary commits (as in production, where the version is read on a kept
    connection of its own), does a page kept for a visitor give way to a listing published afterwards?"""
    app = fresh_app("pagecache")
    visitor = app.test_client()
    make = Factory()
    with app.app_context():
        owner = make.user(Role.ENTERPRISE, org=make.org(name="新材料公司"))
        make.need(owner, title="碳纤维复合材料回收工艺")
        states = [_view(visitor, "/needs")[0] for _ in range(3)]
        assert states[-1] == "hit"
        make.need(owner, title="氢燃料电池双极板防腐涂层")  # committed on the app's own connections
        state, page = _view(visitor, "/needs")
        assert state == "miss" and "氢燃料电池双极板防腐涂层" in page and "碳纤维复合材料回收工艺" in page
        assert _view(visitor, "/needs")[0] == "hit"


def test_a_session_seen_from_another_browser_takes_the_normal_path(client_as, firm_and_need):
    """When the session cookie arrives from another browser (Flask-Login's session identifier differs), is the
    page rendered by the normal path (which marks the session non-fresh) instead of replayed?"""
    _firm, need = firm_and_need
    client = _settled(client_as("expert"))
    assert [_view(client, f"/needs/{need.id}")[0] for _ in range(2)] == ["miss", "hit"]
    with client.session_transaction() as session:
        session["_id"] = "identifier-of-another-browser"
    assert [_view(client, f"/needs/{need.id}")[0] for _ in range(2)] == [None, None]
    with client.session_transaction() as session:
        assert session.get("_fresh") is False

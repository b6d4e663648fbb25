"""The signed-in user is loaded once per request, with what every page reads of them, in one query."""
from __future__ import annotations

from flask_login import login_user
from sqlalchemy import event

from matchmaker.core.enums import Role
from matchmaker.extensions import db, login_manager
from matchmaker.notifications.operations import notify, unread_at_load
from matchmaker.notifications.views import unread_notifications


def test_the_user_loader_reads_roles_memberships_profile_and_unread_count_in_one_query(app, make):
    """Does loading the session's user take one SQL statement, after which its roles, memberships (with their
    organizations), expert profile and unread count need none?"""
    org = make.org()
    user = make.user(Role.ENTERPRISE, org=org)
    notify([user], "test", "一条通知")
    db.session.commit()
    token = user.session_token
    db.session.expunge_all()
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        loaded = login_manager._user_callback(token)
        assert len(seen) == 1
        assert loaded.has_role(Role.ENTERPRISE) and [m.organization.name for m in loaded.memberships] == [org.name]
        assert loaded.expert_profile is None and unread_at_load(loaded) == 1
        assert len(seen) == 1, seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_the_unread_count_read_with_the_user_gives_way_to_a_write_in_the_same_request(app, make):
    """Once this request writes (a notification created after the user was loaded), does the navigation badge
    count again instead of showing the count read with the user?"""
    user = make.user(Role.ENTERPRISE, org=make.org())
    db.session.commit()
    with app.test_request_context("/"):
        loaded = login_manager._user_callback(user.session_token)
        login_user(loaded)
        assert unread_at_load(loaded) == 0 and unread_notifications() == 0
        notify([loaded], "test", "新的通知")
        db.session.flush()
        assert unread_at_load(loaded) is None
        assert unread_notifications() == 1

"""Audit trail in the reader's language: the admin audit page, a user's recent activity and a listing's
review history show translated actions, targets, state changes and actor-less events, with the raw codes
kept only as tooltips; every action code the code base writes has a label."""
from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest

from matchmaker.admin import operations as admin_ops
from matchmaker.core import audit
from matchmaker.core.audit_labels import (ACTION_LABELS, action_label, category_choices, is_labelled,
                                          labelled_codes, state_label, target_label)
from matchmaker.extensions import db

ROOT = Path(__file__).resolve().parents[2]
EN = {"lang": "en"}
#: raw codes that used to be the visible text of the audit pages
RAW = ["need.submitted", "need.create", "admin.role_grant", "admin.deactivate", "auth.login_failed",
       "users #", "needs #", "coordinator:qingdao", "active → inactive", "draft → submitted"]


def visible_text(page: str) -> str:
    """What a reader sees: the page without tags (so without title= tooltips), entities decoded."""
    body = page[page.index("<body"):] if "<body" in page else page
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.fixture
def trail(client, client_as, world, make):
    """A failed sign-in, a scoped coordinator grant, a deactivation and a need created and submitted."""
    client.post("/login", data={"email": "nobody@example.com", "password": "whatever whatever"})
    admin = client_as("admin")
    admin.post(f"/admin/users/{world['expert'].id}/roles", data={"role": "coordinator", "hub_city": "qingdao"})
    admin.post(f"/admin/users/{world['other_enterprise'].id}/active", data={"active": "0"})
    need = make.need(world["enterprise"], status="submitted")
    return {"admin": admin, "need": need}


# -- the audit page ------------------------------------------------------------------------------------

def test_zh_audit_page_shows_no_raw_codes(trail):
    """Does the Chinese audit page show no raw code (need.submitted, admin.role_grant, users #3,
    coordinator:qingdao, active → inactive) as visible text, keeping them as title= tooltips, and show the
    need's action, target and change in Chinese (技术需求 · 待审核, 技术需求 #n, 草稿 → 待审核)?"""
    page = trail["admin"].get("/admin/audit").get_data(as_text=True)
    text = visible_text(page)
    for raw in RAW:
        assert raw not in text, raw
    assert "匿名" not in text and "anonymous" not in text
    for tooltip in ('title="need.submitted"', 'title="admin.role_grant"', 'title="auth.login_failed"',
                    f'title="needs #{trail["need"].id}"', 'title="→ coordinator:qingdao"',
                    'title="active → inactive"'):
        assert tooltip in page, tooltip
    assert "技术需求 · 待审核" in text and f"技术需求 #{trail['need'].id}" in text and "草稿 → 待审核" in text
    assert "正常 → 已停用" in text


def test_zh_audit_page_new_chinese_labels(trail, world):
    """Once the new msgids are merged into the catalogue, does the Chinese audit page say 授予角色, 停用账号,
    登录失败, 创建技术需求, 用户 #n, 协调员（青岛） and 未登录访客 for the anonymous failed sign-in?"""
    text = visible_text(trail["admin"].get("/admin/audit").get_data(as_text=True))
    for label in ("授予角色", "停用账号", "登录失败", "创建技术需求", f"用户 #{world['expert'].id}",
                  "协调员（青岛）", "未登录访客", "全部操作", "操作类别"):
        assert label in text, label
    assert "Role granted" not in text and "Failed sign-in" not in text


def test_en_audit_page_shows_english_labels(trail, world):
    """With ?lang=en, does the audit page show English labels (Role granted, Need · Submitted, User #n,
    Coordinator (Qingdao), Active → Deactivated, Visitor (not signed in)) and no raw code as visible text?"""
    text = visible_text(trail["admin"].get("/admin/audit", query_string=EN).get_data(as_text=True))
    for raw in RAW:
        assert raw not in text, raw
    for label in ("Role granted", "Account deactivated", "Failed sign-in", "Need created", "Need · Submitted",
                  f"User #{world['expert'].id}", f"Need #{trail['need'].id}", "→ Coordinator (Qingdao)",
                  "Active → Deactivated", "Draft → Submitted", "Visitor (not signed in)"):
        assert label in text, label
    assert "anonymous" not in text


def test_event_without_actor_is_the_system(client_as, world):
    """Is an actor-less event that no visitor caused (create-admin from the command line) shown as
    "System / command line", not "anonymous"?"""
    admin_ops.bootstrap_admin(world["expert"].email)
    db.session.commit()
    text = visible_text(client_as("admin").get("/admin/audit", query_string=EN).get_data(as_text=True))
    assert "System / command line" in text and "→ Administrator" in text
    assert "anonymous" not in text.lower()


def test_filter_is_a_select_of_translated_categories(trail):
    """Is the action filter a select of translated categories (Accounts → auth., Administration → admin.,
    Technology needs → need. …) that still filters by prefix?"""
    admin = trail["admin"]
    page = admin.get("/admin/audit", query_string=EN).get_data(as_text=True)
    assert re.search(r'<select[^>]*name="action"', page)
    for value, label in (("", "All actions"), ("auth.", "Accounts"), ("admin.", "Administration"),
                         ("need.", "Technology needs"), ("capability.", "Capabilities"), ("pairing.", "Pairings"),
                         ("fair.", "Docking fairs"), ("challenge.", "Open challenges"),
                         ("voucher.", "Innovation vouchers"), ("org.", "Organizations")):
        assert re.search(rf'<option[^>]*value="{re.escape(value)}"[^>]*>{label}</option>', page), label
    only_auth = admin.get("/admin/audit", query_string={"action": "auth.", **EN}).get_data(as_text=True)
    assert "Failed sign-in" in only_auth and "Role granted" not in only_auth
    assert re.search(r'<option selected value="auth\.">Accounts</option>', only_auth)


def test_old_action_links_still_filter(trail):
    """Does an older link with any prefix (?action=need.sub) still filter, shown as a selected choice
    "Starting with “need.sub”", and does an over-long prefix leave the page working?"""
    admin = trail["admin"]
    page = admin.get("/admin/audit", query_string={"action": "need.sub", **EN}).get_data(as_text=True)
    text = visible_text(page)
    assert "Need · Submitted" in text and "Need created" not in text and "Role granted" not in text
    assert re.search(r'<option selected value="need\.sub">Starting with “need\.sub”</option>', html.unescape(page))
    assert admin.get("/admin/audit", query_string={"action": "%" * 100}).status_code == 200


# -- the other pages that show the trail -----------------------------------------------------------------

def test_user_detail_recent_activity_is_translated(trail, world):
    """Does a user's "Recent activity" show the translated action and change (Role granted →
    Coordinator (Qingdao)) instead of admin.role_grant → coordinator:qingdao, the code as a tooltip?"""
    admin = trail["admin"]
    url = f"/admin/users/{world['expert'].id}"
    page = admin.get(url, query_string=EN).get_data(as_text=True)
    text = visible_text(page)
    assert "Role granted" in text and "→ Coordinator (Qingdao)" in text
    assert "admin.role_grant" not in text and "coordinator:qingdao" not in text
    assert 'title="admin.role_grant"' in page
    zh = visible_text(admin.get(url).get_data(as_text=True))
    assert "admin.role_grant" not in zh and "coordinator:qingdao" not in zh and "协调员" in zh


def test_review_history_is_translated(trail, client_as):
    """Does a listing's review history show "Need · Submitted" / "技术需求 · 待审核" instead of
    need.submitted, with the code as a tooltip?"""
    url = f"/review/needs/{trail['need'].id}"
    coordinator = client_as("coordinator")
    page = coordinator.get(url, query_string=EN).get_data(as_text=True)
    history = page[page.index('id="history"'):]
    history = history[:history.index("</ul>")]
    assert "Need · Submitted" in visible_text(history) and "need.submitted" not in visible_text(history)
    assert 'title="need.submitted"' in history
    zh = coordinator.get(url).get_data(as_text=True)
    zh_history = visible_text(zh[zh.index('id="history"'):][:zh[zh.index('id="history"'):].index("</ul>")])
    assert "技术需求 · 待审核" in zh_history and "need." not in zh_history


# -- every code has a label ------------------------------------------------------------------------------

def _written_actions() -> tuple[set[str], set[str]]:
    """(literal codes, f-string patterns as regexes) of every ``audit.record(...)`` in matchmaker/, and of the
    workflows' state machines: each ``StateMachine(noun=…)`` writes the family ``<noun>.<state>``, and a
    ``.move(…, action="…")`` call writes that code."""
    literals: set[str] = set()
    patterns: set[str] = set()

    def strings(node, scope) -> list:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return strings(node.body, scope) + strings(node.orelse, scope)
        if isinstance(node, ast.Name):  # action = "bid.edit" … audit.record(action, …)
            found = [s for a in ast.walk(scope) if isinstance(a, ast.Assign)
                     for t in a.targets if isinstance(t, ast.Name) and t.id == node.id
                     for s in strings(a.value, scope)]
            assert found, f"cannot resolve the action variable {node.id!r}"
            return found
        if isinstance(node, ast.JoinedStr):
            return [ast.JoinedStr(values=node.values)]
        if isinstance(node, ast.BoolOp):  # `action or f"{noun}.{to}"`: a parameter, else the family
            params = {a.arg for a in ast.walk(scope.args) if isinstance(a, ast.arg)}
            return [s for v in node.values if not (isinstance(v, ast.Name) and v.id in params)
                    for s in strings(v, scope)]
        raise AssertionError(f"unexpected action expression: {ast.dump(node)}")

    def family(noun) -> str:
        """The audit family a StateMachine's ``noun`` writes: "pairing" → pairing.<state>; a function of the
        object (listings: need / capability) → any <noun>.<state>."""
        if isinstance(noun, ast.Constant) and isinstance(noun.value, str):
            return re.escape(noun.value) + r"\.[a-z_]+"
        if isinstance(noun, ast.Lambda):
            return r"[a-z_]+\.[a-z_]+"
        raise AssertionError(f"unexpected state machine noun: {ast.dump(noun)}")

    for path in (ROOT / "matchmaker").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            keywords = {k.arg: k.value for k in call.keywords}
            if name == "StateMachine" and "noun" in keywords:
                patterns.add(family(keywords["noun"]))
            if name == "move" and isinstance(keywords.get("action"), ast.Constant):
                literals.add(keywords["action"].value)
        for scope in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for call in ast.walk(scope):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "record" and isinstance(call.func.value, ast.Name)
                        and call.func.value.id == "audit" and call.args):
                    continue
                for value in strings(call.args[0], scope):
                    if isinstance(value, str):
                        literals.add(value)
                    else:
                        patterns.add("".join(re.escape(part.value) if isinstance(part, ast.Constant)
                                             else "[a-z_]+" for part in value.values))
    return literals, patterns


@pytest.mark.nodb
def test_every_literal_action_code_has_a_label():
    """Does every literal action code written with audit.record("…") in matchmaker/ (including
    conditional ones and the `action` variable of bids) have a label rather than falling back to the code?"""
    literals, _patterns = _written_actions()
    assert {"auth.login_failed", "admin.role_grant", "admin.deactivate", "bid.submit", "seed.load"} <= literals
    unlabelled = sorted(code for code in literals if not is_labelled(code))
    assert not unlabelled, f"add a label to matchmaker/core/audit_labels.py for: {unlabelled}"


@pytest.mark.nodb
def test_every_fstring_action_family_has_labels():
    """Does every f-string action family written with audit.record(f"…") (listing, pairing, fair, meeting
    request, challenge, voucher and pairing-response codes) match labelled codes?"""
    _literals, patterns = _written_actions()
    assert len(patterns) >= 6
    codes = labelled_codes()
    for pattern in patterns:
        assert any(re.fullmatch(pattern, code) for code in codes), f"no label for the family {pattern}"
    assert all(is_labelled(code) for code in codes)


def test_composed_labels_in_english(app):
    """In English, are state-change codes composed from the kind and the state's label (pairing.contract_signed
    → "Pairing · Contract signed", fair.open, challenge.awarded, voucher.expire, fair.meeting_accepted,
    pairing.response.need.interested), and is an unknown code shown as it is?"""
    with app.test_request_context("/?lang=en"):
        assert action_label("pairing.contract_signed") == "Pairing · Contract signed"
        assert action_label("capability.published") == "Capability · Published"
        assert action_label("fair.open") == "Fair · Open for registration"
        assert action_label("challenge.awarded") == "Challenge · Awarded"
        assert action_label("voucher.expire") == "Voucher · Expired"
        assert action_label("fair.meeting_accepted") == "Meeting request · Accepted"
        assert action_label("pairing.response.need.interested") == "Pairing · Enterprise side · Interested"
        assert action_label("need.edit") == "Need edited"
        assert action_label("widget.frobbed") == "widget.frobbed"
        assert action_label("pairing.response.x.y") == "pairing.response.x.y"


def test_states_and_targets_in_english(app):
    """In English, are states read by the target's kind (fair 'closed' vs listing 'closed'), role scopes split
    into role and hub city ('coordinator:all' → all hub cities), and targets a translated kind plus id, with
    unknown values shown as they are?"""
    with app.test_request_context("/?lang=en"):
        assert state_label("coordinator:all", "users") == "Coordinator (All hub cities)"
        assert state_label("coordinator:qingdao", "users") == "Coordinator (Qingdao)"
        assert state_label("admin", "users") == "Administrator"
        assert state_label("inactive", "users") == "Deactivated"
        assert state_label("idle", "users") == "Idle timeout"
        assert state_label("open", "fairs") == "Open for registration"
        assert state_label("open", "challenges") == "Open for bids"
        assert state_label("pending_review", "pairings") == "Awaiting coordinator"
        assert state_label("won", "challenge_bids") == "Winner"
        assert state_label("pending", "membership_requests") == "Awaiting decision"
        assert state_label("120.00", "vouchers") == "120.00"
        assert state_label("coordinator:atlantis", "users") == "coordinator:atlantis"
        assert target_label("users", 3) == "User #3"
        assert target_label("fair_meeting_requests", 7) == "Meeting request #7"
        assert target_label("widgets", 2) == "widgets #2"
        assert [str(label) for _v, label in category_choices()][:3] == ["All actions", "Accounts",
                                                                       "Administration"]


def test_labels_cover_recorded_events_end_to_end(app, world):
    """Does describe() label a freshly recorded event (here: admin.role_scope from coordinator:qingdao to
    coordinator:all on a user) completely, with the raw codes kept for the tooltip?"""
    from matchmaker.core.audit_labels import describe
    with app.test_request_context("/?lang=en"):
        event = audit.record("admin.role_scope", actor=world["admin"], target=world["expert"],
                             from_state="coordinator:qingdao", to_state="coordinator:all")
        d = describe(event)
        assert d.action == str(ACTION_LABELS["admin.role_scope"]) == "Role scope changed"
        assert d.target == f"User #{world['expert'].id}" and d.target_code == f"users #{world['expert'].id}"
        assert d.change == "Coordinator (Qingdao) → Coordinator (All hub cities)"
        assert d.change_code == "coordinator:qingdao → coordinator:all" and d.action_code == "admin.role_scope"

"""Property-based fuzzing of the HTML forms and query strings (hypothesis): whatever a client sends — random
unicode, control characters, mixed scripts, huge or empty values, lists where one value is expected, numbers
out of range — the answer is never a server error, and a refused submission leaves the database unchanged.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (scripts/test.sh does both).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchmaker.core.enums import CoopMode, HubCity, Industry
from matchmaker.extensions import db
from matchmaker.pairings import operations as pairing_ops

from tests.helpers import PASSWORD, login

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

#: values that break naive parsers: numbers out of every range, markup, SQL, direction marks, NUL
NASTY = ["", " ", "\x00", "\t\n\r", "0", "-1", "1e309", "NaN", "inf", "-0", "99999999999999999999999",
         "9223372036854775808", "2026-02-30", "9999-12-31", "0001-01-01", "<script>x</script>", "' OR 1=1 --",
         "\u202eevil", "中文 English ﻿混合 русский ☃", "%s%n%x", "../../etc/passwd", "a" * 300,
         "x@y", "@", "None", "null", "true", "[]", "{}"]

text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),  # any code point but surrogates: control characters and every script included
    st.builds(lambda chunk, times: chunk * times, st.text(min_size=1, max_size=4), st.integers(200, 6000)),
)
#: a field's value: one string, or several (a list where one value is expected, or none at all)
value = st.one_of(text, text, st.lists(text, max_size=3))


def form_of(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Some of the known fields (each fuzzed, or a plausible value) plus, sometimes, unknown ones."""
    known = st.fixed_dictionaries({}, optional={name: st.one_of(value, plausible)
                                                for name, plausible in fields.items()})
    extra = st.dictionaries(st.text(min_size=1, max_size=10), value, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, extra)


def choice(enum_cls, *more):
    return st.sampled_from([*enum_cls.values(), *more])


def table_counts() -> dict[str, int]:
    """Rows per table (audit_events excluded: refused logins are audited on purpose)."""
    return {t.name: db.session.scalar(db.select(db.func.count()).select_from(t))
            for t in db.metadata.sorted_tables if t.name != "audit_events"}


def row_of(obj) -> dict:
    db.session.expire_all()
    table = obj.__table__
    row = db.session.execute(db.select(table).where(table.c.id == obj.id)).mappings().one()
    return dict(row)


def check(response, before_counts, before_row=None, obj=None):
    """No server error; a refusal (4xx) changed nothing."""
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    if response.status_code >= 400:
        assert table_counts() == before_counts
        if obj is not None:
            assert row_of(obj) == before_row


def post(app, role_user, url, data):
    client = app.test_client()
    if role_user is not None:
        login(client, role_user)
    return client.post(url, data=data)


# -- the forms: (url, fields, roles, the row the form changes) -------------------------------------------
# One test per group draws the form too, so the per-test fixtures (users with hashed passwords) are built once.

LISTING = {"title": st.just("低温电池材料攻关"), "coop_modes": st.lists(choice(CoopMode), max_size=2),
           "hub_city": choice(HubCity), "region": st.just("两江新区"),
           "save_draft": st.just("y"), "save_submit": st.just("y"), "version": st.sampled_from(["1", "2", "x"])}
NEED = {**LISTING, "industry": choice(Industry), "background": st.just("背景"), "problems": st.just("问题"),
        "targets": st.just("指标"), "budget_min": st.sampled_from(["0", "10", "-5", "1e3"]),
        "budget_max": st.sampled_from(["5", "100", "100000000"]),
        "deadline": st.dates().map(str), "visibility": st.sampled_from(["public", "members", "private", "x"]),
        "contact_name": st.just("王工"), "contact_phone": st.sampled_from(["023-6123", "+86 (23) 1234"]),
        "contact_email": st.emails().map(str), "organization_id": st.sampled_from(["1", "2", "x"])}
CAPABILITY = {**LISTING, "kind": st.sampled_from(["achievement", "expertise", "instrument", "platform"]),
              "summary": st.just("摘要"), "description": st.just("描述"), "field": choice(Industry),
              "trl": st.sampled_from(["1", "9", "10", "0"]), "ip": st.just("ZL2021")}
PROFILE = {"name": st.just("李四"), "locale": st.sampled_from(["zh_CN", "en"]),
           "fields": st.lists(choice(Industry), max_size=2), "languages": st.lists(st.sampled_from(["zh", "en"])),
           "title": st.just("研究员"), "affiliation": st.just("某研究院"), "bio": st.just(""),
           "max_active_pairings": st.sampled_from(["0", "5", "100"])}
ORGANIZATION = {"name": st.just("重庆甲公司"), "name_en": st.just("Jia Ltd"), "hub_city": choice(HubCity, ""),
                "region": st.just("渝中"), "description": st.just("")}
PAIRING = {
    "respond": {"side": st.sampled_from(["need", "capability", "x"]),
                "decision": st.sampled_from(["interested", "declined", "maybe"]),
                "reason": st.sampled_from(["not_relevant", "other", "x"]), "message": text},
    "judge": {"decision": st.sampled_from(["approve", "reject"]), "version": st.sampled_from(["1", "2", "x"]),
              "comment": text},
    "schedule": {"when": st.sampled_from(["2027-01-05T10:00", "2027-13-01T10:00", "10:00"]),
                 "tz_offset": st.sampled_from(["480", "-840", "100000", "x"]), "place": text},
    "outcome": {"outcome": st.sampled_from(["in_progress", "contract_signed", "failed"]),
                "contract_type": st.sampled_from(["license", "x"]),
                "amount": st.sampled_from(["100", "-1", "1e400", "NaN", "sNaN", "0.001"]), "note": text},
}
IDS = st.one_of(st.integers(-1, 30), st.integers(2**31 - 2, 2**70))
SCORES = st.sampled_from(["0.5", "NaN", "inf", "-inf", "1e400", "x", ""])
MONEY = st.sampled_from(["100", "0.001", "-1", "1e400", "NaN", "sNaN", "-sNaN", "Infinity", "1" * 400])
ANYONE = [None, "enterprise", "other_enterprise", "expert", "coordinator", "admin"]


def _edit(kind, status):
    """A fresh listing of ``kind`` in ``status`` for each example, and its edit page."""
    def target(world, make, pairing):
        if kind == "needs":
            listing = make.need(world["enterprise"], status=status)
        else:
            listing = make.capability(world["expert"], status=status)
        return f"/{kind}/{listing.id}/edit", listing
    return target


FORMS = {
    "accounts": {
        "login": (lambda w, m, p: ("/login", None), {
            "email": st.sampled_from([w + "@example.test" for w in ("user1", "nobody")]),
            "password": st.just(PASSWORD), "remember": st.sampled_from(["y", "on", ""])}, [None]),
        "register": (lambda w, m, p: ("/register", None), {
            "name": st.just("张三"), "email": st.emails().map(str), "password": st.just(PASSWORD),
            "confirm": st.just(PASSWORD), "locale": st.sampled_from(["zh_CN", "en"]),
            "account_type": st.sampled_from(["enterprise", "expert", "coordinator", "admin"]),
            "org_name": st.sampled_from(["重庆甲公司", "某研究院", "新公司"]), "hub_city": choice(HubCity),
            "region": st.just("渝中"), "title": st.just("教授"), "affiliation": st.just("某研究院"),
            "fields": st.lists(choice(Industry), max_size=2), "languages": st.lists(st.sampled_from(["zh", "en"])),
            "bio": st.just("简介")}, [None]),
        "profile": (lambda w, m, p: ("/profile", None), PROFILE, ["enterprise", "expert"]),
        "organization": (lambda w, m, p: (f"/organizations/{w['firm'].id}/edit", w["firm"]), ORGANIZATION,
                         ["enterprise", "other_enterprise", "admin"]),
        "password": (lambda w, m, p: ("/profile/password", None),
                     {"current_password": st.just(PASSWORD), "password": text, "confirm": text}, ["expert"]),
        "token": (lambda w, m, p: ("/profile/tokens", None),
                  {"name": text, "expires_in": st.sampled_from(["30", "never", "0", "x"])}, ["expert"]),
    },
    "listings": {
        "need_new": (lambda w, m, p: ("/needs/new", None), NEED, ANYONE),
        "capability_new": (lambda w, m, p: ("/capabilities/new", None), CAPABILITY, ANYONE),
        "need_edit": (_edit("needs", "published"), NEED, ["enterprise", "other_enterprise", "coordinator"]),
        "need_edit_draft": (_edit("needs", "draft"), NEED, ["enterprise"]),
        "capability_edit": (_edit("capabilities", "published"), CAPABILITY, ["expert", "enterprise"]),
    },
    "workflow": {
        "publish": (lambda w, m, p: (f"/review/needs/{(n := m.need(w['enterprise'], status='submitted')).id}/publish",
                                     n), {"version": st.sampled_from(["1", "2", "0", ""]), "comment": text},
                    ["coordinator", "admin", "expert"]),
        "return": (lambda w, m, p: (f"/review/needs/{(n := m.need(w['enterprise'], status='submitted')).id}/return",
                                    n), {"version": st.sampled_from(["1", "2", ""]), "reason": text},
                   ["coordinator", "admin", "expert"]),
        **{f"pairing_{name}": (lambda w, m, p, name=name: (f"/pairings/{p.id}/{name}", p), fields,
                               ["enterprise", "expert", "coordinator", "other_enterprise"])
           for name, fields in PAIRING.items()},
        "propose": (lambda w, m, p: ("/pairings/propose", None), {
            "need_id": IDS.map(str), "capability_id": IDS.map(str),
            "score": SCORES, "message": text},
            ["enterprise", "expert", "coordinator"]),
        "assign": (lambda w, m, p: ("/coordinate/assign", None), {
            "pick": st.lists(st.one_of(text, st.builds("{}:{}:{}".format, IDS, IDS, SCORES)), max_size=3),
            "slots": st.sampled_from(["3", "0", "x"]), "hub_city": choice(HubCity, "x")},
            ["coordinator", "admin", "expert"]),
    },
    "programme": {
        "fair_new": (lambda w, m, p: ("/fairs/new", None), {
            "title": st.just("重庆供需对接会"), "description": text, "mode": st.sampled_from(["onsite", "online", "x"]),
            "starts_at": st.sampled_from(["2027-03-01T09:00", "2027-02-30T09:00", "x"]),
            "ends_at": st.sampled_from(["2027-03-01T17:00", "2026-01-01T00:00"]),
            "registration_deadline": st.sampled_from(["2027-02-20T17:00", ""]), "place": text,
            "video_url": st.sampled_from(["https://example.test/v", "javascript:x"]), "hub_city": choice(HubCity),
            "organizer_id": st.sampled_from(["1", "x", "99999999999999999999"]),
            "slot_minutes": st.sampled_from(["30", "0", "1" * 400]), "tables": st.sampled_from(["10", "1" * 400])},
            ["coordinator", "admin", "expert"]),
        "challenge_new": (lambda w, m, p: (f"/challenges/new/{p.need_id}", None), {
            "reward": MONEY, "deadline": st.dates().map(str), "terms": text},
            ["enterprise", "other_enterprise", "coordinator"]),
        "voucher_issue": (lambda w, m, p: ("/vouchers/issue", None), {
            "organization_id": st.sampled_from(["1", "2", "x"]), "hub_city": choice(HubCity), "amount": MONEY,
            "expires_on": st.dates().map(str), "note": text}, ["coordinator", "admin", "enterprise"]),
    },
}


@pytest.fixture
def pairing(world, make):
    need = make.need(world["enterprise"])
    cap = make.capability(world["expert"])
    made = pairing_ops.propose_pairing(need, cap, by=world["enterprise"])
    db.session.commit()
    return made


@pytest.mark.parametrize("group", sorted(FORMS))
@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_forms_fuzz(app, world, make, pairing, group, data):
    """Each form of the group, as each role that can reach it (and some that cannot)."""
    name = data.draw(st.sampled_from(sorted(FORMS[group])), label="form")
    target, fields, roles = FORMS[group][name]
    role = data.draw(st.sampled_from(roles), label="role")
    fields = data.draw(form_of(fields), label="fields")
    url, obj = target(world, make, pairing)
    before = table_counts()
    row = row_of(obj) if obj is not None else None
    check(post(app, world[role] if role else None, url, fields), before, row, obj)


# -- search, browse and other query strings --------------------------------------------------------------

QUERY = {"q": text, "page": st.one_of(st.integers(-5, 2**70).map(str), text), "industry": choice(Industry),
         "hub_city": choice(HubCity), "coop": choice(CoopMode), "field": choice(Industry),
         "kind": st.sampled_from(["achievement", "x"]), "state": text, "status": text, "role": text,
         "lang": st.sampled_from(["en", "zh_CN", "xx"]), "next": text, "slots": text, "quota": text,
         "action": text, "actor": text, "fragment": st.just("1")}
PAGES = ["/", "/needs", "/capabilities", "/suggestions", "/my", "/pairings", "/coordinate", "/coordinate/assign",
         "/review/", "/admin/users", "/admin/audit", "/inbox", "/dashboards", "/fairs", "/challenges",
         "/vouchers", "/login", "/register", "/profile/tokens"]


@FUZZ
@given(page=st.sampled_from(PAGES), query=form_of(QUERY),
       role=st.sampled_from([None, "enterprise", "expert", "coordinator", "admin"]))
def test_query_strings_fuzz(app, world, page, query, role):
    client = app.test_client()
    if role:
        login(client, world[role])
    response = client.get(page, query_string=query)
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]


@FUZZ
@given(ident=st.one_of(st.integers(0, 3), st.integers(2**31 - 2, 2**31 + 2), st.integers(2**63 - 2, 2**80)),
       path=st.sampled_from(["/needs/{}", "/capabilities/{}", "/needs/{}/edit", "/needs/{}/matches",
                             "/pairings/{}", "/organizations/{}", "/review/needs/{}", "/admin/users/{}",
                             "/fairs/{}", "/challenges/{}", "/vouchers/{}", "/inbox/{}",
                             "/api/v1/needs/{}", "/api/v1/pairings/{}"]),
       role=st.sampled_from([None, "enterprise", "admin"]))
def test_out_of_range_ids_fuzz(app, world, ident, path, role):
    """Ids past any integer column's range are simply not found (404), never a database error."""
    client = app.test_client()
    if role:
        login(client, world[role])
    response = client.get(path.format(ident))
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]

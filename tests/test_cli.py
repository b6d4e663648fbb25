"""The command line (matchmaker/cli.py): `matchmaker seed` in production and on re-runs, the weekly digest's
hard filters without the matching engine, and `bench search` / `bench embed` refusing bad input files before a
model loads. Most tests here began as regressions from the review of 2026-12-02."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from matchmaker.accounts.models import Membership, User
from matchmaker.cli import seed
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.matching import cli as matching_cli
from matchmaker.notifications.models import Notification
from matchmaker.pairings.cli import send_digests
from matchmaker.pairings.models import ConflictOfInterest
from matchmaker.seeding import DEFAULT_DEMO_PASSWORD, DEMO_DOMAIN, load_seeds

STRONG = "Our-own-seed-password-2026"


def _seeded_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.seed_key.is_not(None)))


# -- matchmaker seed in production --------------------------------------------------------------------------

def test_seed_refuses_production_without_flag_and_own_password(app, monkeypatch):
    """In production, does `matchmaker seed` refuse to create the demo accounts (an administrator among them)
    unless --allow-production is given with a password other than the published default, and then use it?"""
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    runner = app.test_cli_runner()
    no_env = {"MATCHMAKER_DEMO_PASSWORD": None}

    refused = runner.invoke(seed, [], env=no_env)
    assert refused.exit_code != 0 and "--allow-production" in refused.output
    default = runner.invoke(seed, ["--allow-production"], env=no_env)
    assert default.exit_code != 0 and "default demo password" in default.output
    explicit_default = runner.invoke(seed, ["--allow-production", "--demo-password", DEFAULT_DEMO_PASSWORD])
    assert explicit_default.exit_code != 0
    weak = runner.invoke(seed, ["--allow-production", "--demo-password", "short"])
    assert weak.exit_code != 0 and "too weak" in weak.output
    assert _seeded_users() == 0, "a refused seed wrote accounts"

    ok = runner.invoke(seed, ["--allow-production"], env={"MATCHMAKER_DEMO_PASSWORD": STRONG})
    assert ok.exit_code == 0, ok.output
    admin = db.session.scalar(select(User).where(User.seed_key == "demo-admin"))
    assert admin.check_password(STRONG) and not admin.check_password(DEFAULT_DEMO_PASSWORD)


def test_seed_in_development_keeps_demo_defaults(app, monkeypatch):
    """Outside production, does plain `matchmaker seed` (what scripts/demo.sh runs) still seed with the
    default demo password, and does a second run add nothing?"""
    monkeypatch.setitem(app.config, "ENV_NAME", "development")
    runner = app.test_cli_runner()
    first = runner.invoke(seed, [], env={"MATCHMAKER_DEMO_PASSWORD": None})
    assert first.exit_code == 0, first.output
    assert db.session.scalar(select(User).where(User.seed_key == "demo-admin")).check_password(DEFAULT_DEMO_PASSWORD)
    again = runner.invoke(seed, [], env={"MATCHMAKER_DEMO_PASSWORD": None})
    assert again.exit_code == 0 and all(line.endswith(": 0") for line in again.output.strip().splitlines())


# -- re-seeding leaves users' edits alone -------------------------------------------------------------------

def _state() -> list[tuple]:
    users = db.session.scalars(select(User).where(User.seed_key.is_not(None)).order_by(User.id)).all()
    return [(u.seed_key, u.email, u.name, sorted((m.organization_id, m.is_manager) for m in u.memberships),
             u.expert_profile.id if u.expert_profile else None) for u in users]


def test_reseeding_keeps_edited_emails_and_removed_memberships():
    """Does running the seeder again leave an edited demo-expert email and removed memberships (the demo firm's,
    an enterprise contact's, an expert's) as the users left them, reporting and changing nothing?"""
    load_seeds("Load-test-password-2026")
    demo_expert = db.session.scalar(select(User).where(User.email == f"expert@{DEMO_DOMAIN}"))
    assert demo_expert is not None and demo_expert.expert_profile is not None

    demo_expert.email = "chen.liqun@example.test"
    for key in ("demo-firm", "user-org-cq-001"):
        user = db.session.scalar(select(User).where(User.seed_key == key))
        assert user is not None and user.memberships, key
        user.memberships.clear()
    expert = db.session.scalar(select(User).where(User.seed_key == "exp-002"))
    assert expert.memberships
    expert.memberships.clear()
    db.session.commit()
    before = _state()

    assert load_seeds("Load-test-password-2026") == {"organizations": 0, "users": 0, "needs": 0, "capabilities": 0}
    db.session.expire_all()
    assert _state() == before
    assert db.session.get(User, demo_expert.id).email == "chen.liqun@example.test"
    assert db.session.scalar(select(User).where(User.email == f"expert@{DEMO_DOMAIN}")) is None


# -- weekly digest without the matching engine -----------------------------------------------------------------

def test_digest_fallback_applies_the_pairing_hard_filters(make):
    """With matching off, does the digest leave out needs of an organization the expert declared a conflict of
    interest with, of their affiliation and of their colleagues, and still send the others?"""
    institute = make.org(kind="institute", name="某研究院")
    expert = make.user(Role.EXPERT, org=institute)
    profile = expert.expert_profile
    profile.fields = ["new_energy"]

    def firm_need(name: str, title: str):
        firm = make.org(kind="enterprise", name=name)
        return firm, make.need(make.user(Role.ENTERPRISE, org=firm), title=title)

    conflict_firm, conflict_need = firm_need("利益冲突公司", "冲突企业的需求")
    db.session.add(ConflictOfInterest(expert_id=profile.id, organization_id=conflict_firm.id))
    affiliation_firm, affiliation_need = firm_need("任职公司", "任职单位的需求")
    profile.affiliation_id = affiliation_firm.id
    colleague_firm = make.org(kind="enterprise", name="同事兼职公司")
    colleague = make.user(Role.ENTERPRISE, org=colleague_firm)
    colleague.memberships.append(Membership(organization=institute, is_manager=False))
    db.session.commit()
    colleague_need = make.need(colleague, title="同事公司的需求")
    _, fine_need = firm_need("无关公司", "可以推荐的需求")

    send_digests()
    note = db.session.scalar(select(Notification).where(Notification.user_id == expert.id,
                                                         Notification.kind == "digest.needs"))
    assert note is not None and f"/needs/{fine_need.id}" in note.body
    for need in (conflict_need, affiliation_need, colleague_need):
        assert f"/needs/{need.id}" not in note.body, need.title


# -- bench search / bench embed input files ---------------------------------------------------------------------

@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: bad input must be refused before that."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")
    monkeypatch.setattr(matching_cli, "_embedder", refuse)


@pytest.mark.parametrize("command,option", [("search", "--queries"), ("embed", "--texts")])
@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"),
    ('{"text": "低温电池"}\n[1, 2]\n', "line 2"),
    ('{"texts": 5}\n', "line 1"),
    ('{"texts": ["a", 3]}\n', "line 1"),
    ('{"text": {"zh": "x"}}\n', "line 1"),
    ('"just a string"\n', "line 1"),
    ('{"_id": "q1"}\n', "line 1"),
    ("{not json\n", "line 1"),
])
def test_bench_refuses_bad_text_files_before_loading_a_model(tmp_path, no_model, command, option, content, needle):
    """Do `bench search --queries` and `bench embed --texts` refuse a missing file, a line that is not a JSON
    object, and text/texts of the wrong type with a usage error naming the line, before loading any model?"""
    path = tmp_path / "texts.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(matching_cli.bench_group, [command, option, str(path), "--json"])
    assert result.exit_code == 2, result.output
    assert needle in result.output and option in result.output


@pytest.mark.nodb
def test_bench_text_file_formats_still_read(tmp_path):
    """Are the accepted lines still read as before: a string "text" (BEIR queries), a list "texts", blank
    lines skipped?"""
    path = tmp_path / "texts.jsonl"
    path.write_text("\n".join([json.dumps({"_id": "q1", "text": "低温电池"}, ensure_ascii=False), "",
                               json.dumps({"texts": ["machine vision", "废水"]}, ensure_ascii=False),
                               json.dumps({"texts": [], "text": "fallback"})]) + "\n", encoding="utf-8")
    assert matching_cli._read_texts(str(path), 100) == ["低温电池", "machine vision", "废水", "fallback"]


def test_the_demo_starts_with_some_activity_once():
    """Does `seed` give the demo pairings at several stages, a challenge with a bid, a voucher and an open
    fair — made through the real operations — and nothing more on a second run?"""
    from matchmaker.challenges.models import Challenge
    from matchmaker.fairs.models import Fair
    from matchmaker.pairings.models import Pairing
    from matchmaker.seeding import seed_demo_activity
    from matchmaker.vouchers.models import Voucher
    load_seeds("Load-test-password-2026")
    made = seed_demo_activity()
    assert made == {"pairings": 4, "challenges": 1, "vouchers": 1, "fairs": 1}
    states = set(db.session.scalars(select(Pairing.state)))
    assert {"proposed", "pending_review", "approved", "contract_signed"} <= states
    assert db.session.scalars(select(Challenge)).one().bids
    assert db.session.scalars(select(Fair.status)).one() == "open"
    assert db.session.scalar(select(db.func.count(Voucher.id))) == 1
    assert seed_demo_activity() == {"pairings": 0, "challenges": 0, "vouchers": 0, "fairs": 0}

"""Load the demo data set in seeds/ into the database.

Idempotent: every seeded row carries a ``seed_key``; rows that exist are left as they are, so running
``matchmaker seed`` twice changes nothing and never overwrites what users edited.
"""
from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from pathlib import Path

from .accounts.models import ExpertProfile, Membership, Organization, User
from .core import audit
from .core.enums import ListingStatus, Role
from .core.time import utcnow
from .extensions import db
from .listings.models import Capability, Need
from .matching.text import detect_lang

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
DEMO_DOMAIN = "demo.matchmaker.local"
#: the demo accounts' password unless one is given; published in the README and scripts/demo.sh, so
#: ``matchmaker seed`` refuses it in production
DEFAULT_DEMO_PASSWORD = "Matchmaker-demo-2026"

#: one demo login per role; printed by the demo script
DEMO_ACCOUNTS = [
    {"key": "demo-admin", "email": f"admin@{DEMO_DOMAIN}", "name": "平台管理员", "roles": [Role.ADMIN]},
    {"key": "demo-coordinator", "email": f"coordinator@{DEMO_DOMAIN}", "name": "科技服务团 李协调",
     "roles": [Role.COORDINATOR]},
    {"key": "demo-coordinator-cq", "email": f"coordinator.cq@{DEMO_DOMAIN}", "name": "重庆服务团 陈协调",
     "roles": [Role.COORDINATOR], "hub_city": "chongqing"},
    {"key": "demo-firm", "email": f"firm@{DEMO_DOMAIN}", "name": "企业用户 王经理", "roles": [Role.ENTERPRISE]},
    {"key": "demo-expert", "email": f"expert@{DEMO_DOMAIN}", "name": None, "roles": [Role.EXPERT]},
]
#: the demo expert login is the first seeded expert (seeds/experts.json) under the easy address above
DEMO_EXPERT_EMAIL = DEMO_ACCOUNTS[-1]["email"]


def _read_json(seeds_dir: Path, name: str) -> list[dict]:
    path = seeds_dir / name
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(path.read_text(encoding="utf-8"))


def _by_key(model) -> dict[str, object]:
    return {row.seed_key: row for row in db.session.scalars(db.select(model).where(model.seed_key.is_not(None)))}


def _user(key: str, email: str, name: str, password_hash: str, roles, hub_city=None, locale="zh_CN") -> User:
    # All demo accounts share one password; hashing it once keeps seeding fast (argon2id is slow by design).
    user = User(seed_key=key, email=email.lower(), name=name, locale=locale, password_hash=password_hash)
    for role in roles:
        user.add_role(role)
        if hub_city and role == Role.COORDINATOR:
            user.roles[-1].hub_city = hub_city
    db.session.add(user)
    return user


def load_seeds(demo_password: str, seeds_dir: Path | None = None, scale: int = 1) -> dict[str, int]:
    """Insert whatever part of the seed set is missing; returns how many rows of each kind were added.

    ``scale`` > 1 adds ``scale - 1`` generated variants of every need and capability (load tests); the
    organizations and accounts stay those of the demo set.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    seeds_dir = seeds_dir or SEEDS_DIR
    added = {"organizations": 0, "users": 0, "needs": 0, "capabilities": 0}

    orgs = _by_key(Organization)
    for row in _read_json(seeds_dir, "organizations.json"):
        if row["key"] in orgs:
            continue
        org = Organization(seed_key=row["key"], name=row["name"], name_en=row.get("name_en"), kind=row["kind"],
                           hub_city=row.get("hub_city"), region=row.get("region"),
                           description=row.get("description"))
        db.session.add(org)
        orgs[row["key"]] = org
        added["organizations"] += 1
    db.session.flush()

    users = _by_key(User)
    experts_seed = _read_json(seeds_dir, "experts.json")

    password_hash = User.hash_password(demo_password)
    created: set[str] = set()  # users made by this run: only they get the seeded memberships and profile

    def ensure(key: str, **kw) -> User:
        if key not in users:
            users[key] = _user(key, password_hash=password_hash, **kw)
            created.add(key)
            added["users"] += 1
        return users[key]

    for account in DEMO_ACCOUNTS:
        if account["key"] == "demo-expert":
            continue
        ensure(account["key"], email=account["email"], name=account["name"], roles=account["roles"],
               hub_city=account.get("hub_city"))

    # One login per enterprise, so every seeded need has a real owner; the demo firm user joins the first.
    # Existing accounts are left as they are: a membership a manager removed stays removed.
    enterprises = [r for r in _read_json(seeds_dir, "organizations.json") if r["kind"] == "enterprise"]
    for row in enterprises:
        key = f"user-{row['key']}"
        user = ensure(key, email=f"{row['key']}@{DEMO_DOMAIN}", name=f"{row['name']} 联系人",
                      roles=[Role.ENTERPRISE])
        if key in created:
            user.memberships.append(Membership(organization=orgs[row["key"]], is_manager=True))
    if "demo-firm" in created and enterprises:
        users["demo-firm"].memberships.append(Membership(organization=orgs[enterprises[0]["key"]],
                                                         is_manager=True))

    for i, row in enumerate(experts_seed):
        locale = "en" if row.get("languages") == ["en"] else "zh_CN"
        email = DEMO_EXPERT_EMAIL if i == 0 else row["email"]
        user = ensure(row["key"], email=email, name=row["name"], roles=[Role.EXPERT], locale=locale)
        if row["key"] in created:
            db.session.add(ExpertProfile(user=user, title=row.get("title"),
                                         affiliation=orgs.get(row.get("org")),
                                         fields=row.get("fields", []), languages=row.get("languages", []),
                                         bio=row.get("bio")))
            if row.get("org") in orgs:
                user.memberships.append(Membership(organization=orgs[row["org"]], is_manager=False))
    db.session.flush()

    reviewer = users["demo-coordinator"]
    experts = {k: u.expert_profile for k, u in users.items() if u.expert_profile is not None}
    needs = _by_key(Need)
    need_rows = _scaled(_read_json(seeds_dir, "needs.jsonl"), scale, "industry", ("background", "problems"))
    for n, row in enumerate(need_rows):
        if row["key"] in needs:
            continue
        need = Need(seed_key=row["key"], organization=orgs[row["org"]],
                    created_by=users[f"user-{row['org']}"], title=row["title"], industry=row["industry"],
                    background=row.get("background", ""), problems=row.get("problems", ""),
                    targets=row.get("targets", ""), budget_min=row.get("budget_min"),
                    budget_max=row.get("budget_max"),
                    deadline=date.fromisoformat(row["deadline"]) if row.get("deadline") else None,
                    hub_city=row.get("hub_city"), region=row.get("region"), coop_modes=row.get("coop_modes", []),
                    visibility=row.get("visibility", "public"), contact_name=row.get("contact_name"),
                    contact_phone=row.get("contact_phone"), contact_email=row.get("contact_email"))
        _set_status(need, row.get("status", "published"), reviewer, age_days=n % 9)
        need.language = detect_lang(need.matching_text())
        db.session.add(need)
        added["needs"] += 1

    caps = _by_key(Capability)
    cap_rows = _scaled(_read_json(seeds_dir, "capabilities.jsonl"), scale, "field", ("summary", "description"))
    for n, row in enumerate(cap_rows):
        if row["key"] in caps:
            continue
        expert = experts.get(row.get("owner_expert"))
        owner = users.get(row.get("owner_expert")) or reviewer
        cap = Capability(seed_key=row["key"], organization=orgs.get(row.get("org")), created_by=owner,
                         expert_id=expert.id if expert else None, kind=row["kind"], title=row["title"],
                         summary=row.get("summary", ""), description=row.get("description", ""),
                         field=row["field"], trl=row.get("trl"), ip=row.get("ip") or None,
                         coop_modes=row.get("coop_modes", []), hub_city=row.get("hub_city"),
                         region=row.get("region"))
        _set_status(cap, row.get("status", "published"), reviewer, age_days=n % 11)
        cap.language = row.get("language") or detect_lang(cap.matching_text())
        db.session.add(cap)
        added["capabilities"] += 1

    db.session.flush()
    if any(added.values()):
        audit.record("seed.load", comment=json.dumps(added))
    db.session.commit()
    return added


def _set_status(listing, status: str, reviewer: User, age_days: int) -> None:
    """Give seeded listings the timestamps their status requires (the CHECK constraints insist)."""
    now = utcnow()
    listing.status = status
    listing.created_at = now - timedelta(days=age_days + 2)
    if status in (ListingStatus.SUBMITTED, ListingStatus.PUBLISHED):
        listing.submitted_at = now - timedelta(days=age_days + 1)
    if status == ListingStatus.PUBLISHED:
        listing.published_at = now - timedelta(days=age_days)
        listing.reviewed_by_id = reviewer.id


# --- generated variants for load tests (``matchmaker seed --scale N``) ---------------------------------

TITLE_PREFIXES = {
    "zh": ["二期项目：", "技改项目：", "新产线配套：", "联合攻关：", "国产化替代：", "智能化升级：", "扩产配套：",
           "出口型号：", "试点示范："],
    "en": ["Phase II: ", "Pilot line: ", "Scale-up: ", "Retrofit: ", "Joint project: ", "Field trial: ",
           "Export variant: ", "Second site: ", "Upgrade: "],
}
RESCALED_FIELDS = ("title", "background", "problems", "targets", "summary", "description")
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?(?![A-Za-z0-9.])")
_SENTENCE_END = re.compile(r"(?<=[。！？；.!?])\s*")


def _scaled(rows: list[dict], scale: int, group_field: str, text_fields: tuple[str, str]) -> list[dict]:
    """The seed rows followed by ``scale - 1`` deterministic variants of each (same order every run)."""
    out = list(rows)
    for copy in range(1, scale):
        out.extend(_variant(row, copy, rows, group_field, text_fields) for row in rows)
    return out


def _variant(row: dict, copy: int, rows: list[dict], group_field: str, text_fields: tuple[str, str]) -> dict:
    """A plausible sibling listing: another project context, other figures, a sentence borrowed from a
    listing of the same field, a later deadline. Seeded by key and copy, so reruns give the same rows."""
    rng = random.Random(f"{row['key']}/{copy}")
    lang = row.get("language") or detect_lang(row["title"])
    factor = rng.choice([0.6, 0.75, 0.8, 1.2, 1.25, 1.5, 2.0])
    variant = {k: (_rescale(v, factor) if k in RESCALED_FIELDS and v else v) for k, v in row.items()}
    variant["key"] = f"{row['key']}-x{copy}"
    prefixes = TITLE_PREFIXES["en" if lang == "en" else "zh"]
    variant["title"] = (prefixes[(copy - 1) % len(prefixes)] + variant["title"])[:200]
    peers = [r for r in rows if r[group_field] == row[group_field] and r["key"] != row["key"]
             and (r.get("language") or detect_lang(r["title"])) == lang]
    if peers:
        donor = rng.choice(peers)
        sentences = [s for s in _SENTENCE_END.split(donor.get(text_fields[1], "")) if s.strip()]
        if sentences:
            joiner = " " if lang == "en" else ""
            variant[text_fields[0]] = joiner.join([variant.get(text_fields[0], ""), rng.choice(sentences)]).strip()
    for key in ("budget_min", "budget_max"):
        if row.get(key) is not None:
            variant[key] = int(round(row[key] * factor))
    if row.get("deadline"):
        variant["deadline"] = (date.fromisoformat(row["deadline"]) + timedelta(days=30 * copy)).isoformat()
    return variant


def _rescale(text: str, factor: float) -> str:
    """Scale the stand-alone figures of a text (not model numbers like 20CrMnTi or 1200V)."""
    def scaled(m: re.Match) -> str:
        value = float(m.group()) * factor
        return f"{value:.1f}" if "." in m.group() else str(max(1, int(round(value))))
    return _NUMBER.sub(scaled, text)


# --- demo activity (``matchmaker seed``, not load tests' data) -----------------------------------------

def seed_demo_activity() -> dict:
    """A few pairings at different stages, an open challenge with a bid, a voucher and an open fair, made
    through the same operations the pages use, so a demo does not start on empty dashboards. Only on a
    database with no pairing yet: a second run (or a live installation) gets nothing."""
    from decimal import Decimal

    from sqlalchemy import func, select

    from .challenges import operations as challenge_ops
    from .core.workflow import WorkflowError
    from .fairs import operations as fair_ops
    from .pairings import operations as pairing_ops
    from .pairings.models import Pairing, PairingState
    from .vouchers import operations as voucher_ops
    made = {"pairings": 0, "challenges": 0, "vouchers": 0, "fairs": 0}
    if db.session.scalar(select(func.count(Pairing.id))):
        return made
    by_email = {u.email: u for u in db.session.scalars(select(User).where(User.email.like(f"%@{DEMO_DOMAIN}")))}
    coordinator, firm = by_email.get(f"coordinator@{DEMO_DOMAIN}"), by_email.get(f"firm@{DEMO_DOMAIN}")
    if coordinator is None or firm is None or not firm.memberships:
        return made
    org = firm.memberships[0].organization
    needs = db.session.scalars(select(Need).where(Need.organization_id == org.id,
                                                  Need.status == ListingStatus.PUBLISHED,
                                                  Need.deleted_at.is_(None)).order_by(Need.id)).all()
    caps = db.session.scalars(select(Capability).where(Capability.status == ListingStatus.PUBLISHED,
                                                       Capability.expert_id.is_not(None),
                                                       Capability.deleted_at.is_(None))
                              .order_by(Capability.id)).all()
    # one pairing per stage: proposed, awaiting the coordinator, approved, contract signed
    stages = [PairingState.PROPOSED, PairingState.PENDING_REVIEW, PairingState.APPROVED,
              PairingState.CONTRACT_SIGNED]
    used = set()  # one need per stage where the firm has enough, so the demo shows several needs moving
    for stage in stages:
        fresh = [n for n in needs if n.id not in used] or needs
        pairs = [(n, c) for n in fresh for c in sorted(caps, key=lambda c, n=n: c.field != n.industry)]
        for need, cap in pairs:
            try:
                with db.session.begin_nested():
                    _advance_pairing(pairing_ops, pairing_ops.propose_pairing(need, cap, by=coordinator, snapshot=False),
                                     stage, coordinator, firm, cap)
            except WorkflowError:
                continue  # not pairable (same people, capacity, …): try the next pair
            made["pairings"] += 1
            used.add(need.id)
            break
    public = [n for n in needs if n.visibility == "public"]
    if public:
        challenge = challenge_ops.publish_challenge(
            public[-1], firm, reward=Decimal("300000"), deadline=utcnow() + timedelta(days=45),
            terms="提交技术方案，样品经第三方检测达标后兑现奖金。")
        made["challenges"] += 1
        expert = by_email.get(f"expert@{DEMO_DOMAIN}")
        if expert is not None and challenge.can_bid(expert):
            challenge_ops.submit_bid(challenge, expert, approach="基于已有中试线改进工艺，三个月内提供样品。",
                                     team_members="课题组 4 人", budget=Decimal("260000"), timeline_months=6)
    if org.hub_city:
        voucher_ops.issue_voucher(coordinator, org, amount=Decimal("200000"),
                                  expires_on=date.today() + timedelta(days=180), hub_city=org.hub_city,
                                  note="演示用科技创新券")
        made["vouchers"] += 1
        start = (utcnow() + timedelta(days=21)).replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 Beijing
        fair = fair_ops.create_fair(coordinator, {
            "title": "新能源与智能制造供需对接洽谈会", "description": "企业需求与专家成果一对一洽谈。",
            "starts_at": start, "ends_at": start + timedelta(hours=6), "mode": "onsite",
            "place": "重庆国际博览中心 S3 馆", "hub_city": org.hub_city, "slot_minutes": 30, "tables": 8,
            "registration_deadline": start - timedelta(days=3)})
        fair_ops.open_fair(fair, coordinator)
        made["fairs"] += 1
    db.session.commit()
    return made


def _advance_pairing(pairing_ops, pairing, stage, coordinator, firm, cap) -> None:
    from .pairings.models import PairingState
    if stage == PairingState.PROPOSED:
        return
    expert_user = cap.expert.user
    pairing_ops.respond(pairing, firm, "need", "interested", message="欢迎来厂实地交流。")
    pairing_ops.respond(pairing, expert_user, "capability", "interested", message="可以安排面谈。")
    if stage == PairingState.PENDING_REVIEW:
        return
    pairing_ops.judge(pairing, coordinator, True, "双方意向明确，同意对接。")
    if stage == PairingState.CONTRACT_SIGNED:
        pairing_ops.record_outcome(pairing, firm, PairingState.CONTRACT_SIGNED, contract_type="license",
                                   amount="800000", note="签订技术许可合同")

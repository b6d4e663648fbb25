"""Does the web app match for real: real embedding model, real FAISS index, rows from the database?"""
from __future__ import annotations

import pytest

from matchmaker import matching_service as ms
from matchmaker.accounts.models import Membership
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.indexing.documents import _indexable
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Need
from matchmaker.suggestions import queries
from tests.helpers import BATTERY_NEED

pytestmark = pytest.mark.slow

def test_need_page_ranks_english_capability_first_with_evidence(matching, docking, client_as):
    """Does a Chinese need get the right English capability first, with evidence, and never its own org's?"""
    response = client_as("enterprise").get(f"/needs/{docking['need'].id}/matches?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    ids = [int(x) for x in __import__("re").findall(r'class="card card-listing mb-2 match-item" data-id="(\d+)"', html)]
    assert ids[0] == docking["right"].id
    assert docking["own_org"].id not in ids
    assert 'data-reason="cross_language"' in html and "Cross-region" in html  # plain-word reasons (issue 16)
    assert "sentence similarity" in html  # the sentence pair's number, in its tooltip


def test_published_listing_is_matchable_without_rebuild(matching, docking, make, world, client_as):
    """Is a capability published after the index was built found at once, and gone once closed?"""
    assert queries.capabilities_for_need(docking["need"], k=10)  # builds the index from the database
    late = make.capability(world["expert"], title="锂电池负极析锂抑制与低温快充", field="new_energy",
                           summary="抑制低温析锂的负极包覆技术", description="-20℃下充放电容量保持率86%，析锂显著减少。")
    found = [s.listing.id for s in queries.capabilities_for_need(docking["need"], k=3)]
    assert late.id in found
    ops.close_listing(late, world["expert"])
    db.session.commit()
    assert late.id not in [s.listing.id for s in queries.capabilities_for_need(docking["need"], k=10)]


def test_missing_or_corrupt_index_is_rebuilt_from_database(matching, docking, app):
    """After the index files are corrupted, does a new engine notice and rebuild from the database?"""
    from pathlib import Path
    first = [s.listing.id for s in queries.capabilities_for_need(docking["need"], k=5)]
    for f in Path(app.config["MATCHMAKER_INDEX_DIR"]).iterdir():
        if f.is_file():
            f.write_bytes(b"garbage")
    app.extensions[ms.EXTENSION_KEY] = None  # a fresh process
    again = [s.listing.id for s in queries.capabilities_for_need(docking["need"], k=5)]
    assert again == first


def test_filters_are_hard(matching, docking):
    """Do the hub-city and field filters exclude non-matching capabilities entirely?"""
    in_qingdao = queries.capabilities_for_need(docking["need"], k=10, hub_city="qingdao")
    assert {s.listing.hub_city for s in in_qingdao} == {"qingdao"}
    marine = queries.capabilities_for_need(docking["need"], k=10, field_code="marine")
    assert [s.listing.field for s in marine] == ["marine"]


def test_expert_sees_suggested_needs(matching, docking, client_as):
    """Does the expert's suggestions page rank the battery need, from their published capabilities?"""
    response = client_as("expert").get("/suggestions?lang=en")
    assert response.status_code == 200
    assert f'data-id="{docking["need"].id}"' in response.get_data(as_text=True)


def test_posting_assistant_flags_vague_need_and_duplicates(matching, docking, client_as):
    """Does the assistant warn about a vague need and point to a similar published one?"""
    client = client_as("other_enterprise")
    vague = client.post("/assist/need", json={"title": "需要技术支持", "problems": "", "targets": ""}).get_json()
    codes = {w["code"] for w in vague["warnings"]}
    assert {"too_short", "no_measurable_target"} <= codes
    similar = client.post("/assist/need", json={
        "title": "磷酸铁锂储能电池冬季低温放电容量衰减",
        "problems": "零下20度放电容量不足，负极析锂", "targets": "低温容量保持率≥85%"}).get_json()
    assert docking["need"].id in [s["id"] for s in similar["similar"]]


@pytest.mark.parametrize("payload", [None, [], {"title": 5}, {"title": "x" * 30000}])
def test_posting_assistant_rejects_bad_input(matching, client_as, payload):
    """Is malformed assistant input answered with a 4xx JSON reason, never a 500?"""
    client = client_as("enterprise")
    response = client.post("/assist/need", json=payload) if payload is not None else client.post(
        "/assist/need", data="not json", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "reason" in response.get_json()


# -- the pairing rules are hard filters of matching ---------------------------------------------------------

BATTERY_CAP_ZH = dict(title="磷酸铁锂电池低温电解液与负极改性", field="new_energy", coop_modes=["license"],
                      summary="宽温域电解液，抑制低温析锂。", description="-20℃放电容量保持率88%，循环2500次。")


@pytest.fixture
def barred(make, world, docking):
    """Battery capabilities the pairing rules refuse for the firm's need — by an expert who works for the firm
    (posting in their own name) and by one who declared a conflict of interest with it — and allowed ones: an
    expert affiliated elsewhere and one with a conflict with another firm."""
    from matchmaker.pairings.models import ConflictOfInterest
    firm, other_firm = world["firm"], world["other_firm"]
    affiliated, conflicted, elsewhere, other_conflict = (make.user(Role.EXPERT) for _ in range(4))
    affiliated.expert_profile.affiliation_id = firm.id
    elsewhere.expert_profile.affiliation_id = world["institute"].id
    db.session.add_all([ConflictOfInterest(expert_id=conflicted.expert_profile.id, organization_id=firm.id),
                        ConflictOfInterest(expert_id=other_conflict.expert_profile.id,
                                           organization_id=other_firm.id)])
    db.session.commit()
    colleague = make.user(Role.EXPERT)  # posts in person, then joins the firm: on both sides
    caps = {name: make.capability(user, **BATTERY_CAP_ZH) for name, user in
            (("affiliated", affiliated), ("conflicted", conflicted), ("elsewhere", elsewhere),
             ("other_conflict", other_conflict), ("colleague", colleague))}
    db.session.add(Membership(user_id=colleague.id, organization_id=firm.id))
    db.session.commit()
    return {"experts": {"affiliated": affiliated, "conflicted": conflicted, "elsewhere": elsewhere,
                        "other_conflict": other_conflict, "colleague": colleague}, "caps": caps,
            "other_need": make.need(world["other_enterprise"], **{**BATTERY_NEED, "hub_city": "chengdu"})}


#: exclusions by the state of things (a pairing exists, capacity used up), not by who is on either side
STATE_EXCLUSIONS = {None, "existing", "capacity_full"}


def _pairing_verdicts(need, caps) -> dict[int, bool]:
    """capability id → may it be paired with ``need``, by both pairing rule sets (assignment and proposal)."""
    from matchmaker.core.workflow import WorkflowError
    from matchmaker.pairings.assignment import build_candidates
    from matchmaker.pairings.operations import check_pairable
    candidates, _capacity = build_candidates([(need, cap, 1.0) for cap in caps])
    by_assignment = {c.capability_id: c.excluded in STATE_EXCLUSIONS for c in candidates}
    by_proposal = {}
    for cap in caps:
        try:
            check_pairable(need, cap, cap.expert)
            by_proposal[cap.id] = True
        except WorkflowError:
            by_proposal[cap.id] = False
    assert by_assignment == by_proposal
    return by_proposal


def test_matching_agrees_with_the_pairing_rules(matching, docking, barred):
    """Does the need's match list hold exactly the capabilities the pairing rules allow (own organization,
    affiliated experts, declared conflicts and a member of the firm on the capability side out; other
    affiliations and other firms' conflicts in)?"""
    from matchmaker.listings.models import Capability
    need = docking["need"]
    everything = list(db.session.scalars(_indexable(Capability)))
    matched = {s.listing.id for s in queries.capabilities_for_need(need, k=len(everything) + 5, evidence=False)}
    verdicts = _pairing_verdicts(need, everything)
    assert matched == {i for i, ok in verdicts.items() if ok}
    caps = barred["caps"]
    assert {caps["elsewhere"].id, caps["other_conflict"].id, docking["right"].id} <= matched
    assert not {caps["affiliated"].id, caps["conflicted"].id, caps["colleague"].id, docking["own_org"].id} & matched


def test_need_matches_never_offer_barred_experts(matching, docking, barred, app, world, client_as):
    """Are an expert who works for the need's firm and one with a declared conflict left out of the expert
    ranking, the match page (with its "Propose pairing" buttons) and the API's matches?"""
    from matchmaker.api import auth
    need, caps, experts = docking["need"], barred["caps"], barred["experts"]
    barred_caps = {caps["affiliated"].id, caps["conflicted"].id}
    barred_experts = {experts[n].expert_profile.id for n in ("affiliated", "conflicted")}
    ranked = {e.expert.id for e in queries.experts_for_need(need, k=20)}
    assert experts["elsewhere"].expert_profile.id in ranked and not ranked & barred_experts

    import re
    html = client_as("enterprise").get(f"/needs/{need.id}/matches?lang=en").get_data(as_text=True)
    shown = {int(i) for i in re.findall(r'match-item" data-id="(\d+)"', html)}
    offered = {int(i) for i in re.findall(r'name="capability_id" value="(\d+)"', html)}
    assert caps["elsewhere"].id in shown and offered == shown
    assert not (shown | offered) & barred_caps
    assert experts["affiliated"].name not in html and experts["conflicted"].name not in html

    _token, secret = auth.create_token(world["other_enterprise"], "t")
    db.session.commit()
    api = app.test_client().get(f"/api/v1/needs/{need.id}/matches?k=50",
                                headers={"Authorization": f"Bearer {secret}"}).get_json()
    listed = {item["capability"]["id"] for item in api["items"]}
    assert caps["elsewhere"].id in listed and not listed & barred_caps


def _match_page_follows(row, client, need, cap) -> None:
    """``cap`` is on ``need``'s (memoised) match page, gone once ``row`` is added, back once it is removed."""
    def shown():
        return f'match-item" data-id="{cap.id}"' in client.get(f"/needs/{need.id}/matches").get_data(as_text=True)

    assert shown()
    db.session.add(row)
    db.session.commit()
    assert not shown()
    db.session.delete(row)
    db.session.commit()
    assert shown()


def test_match_page_sees_a_conflict_declared_later(matching, docking, barred, client_as):
    """Once the ranking is memoised, does a conflict declared afterwards take the expert off the match page
    (and a withdrawn one put them back)?"""
    from matchmaker.pairings.models import ConflictOfInterest
    need, cap = docking["need"], barred["caps"]["elsewhere"]
    _match_page_follows(ConflictOfInterest(expert_id=cap.expert_id, organization_id=need.organization_id),
                        client_as("enterprise"), need, cap)


def test_suggested_needs_skip_the_experts_firm_and_conflicts(matching, docking, barred, world, client_as, app):
    """Are the firm's needs kept out of the suggestions of an expert who works for it, is a member of it or
    declared a conflict with it, while another firm's matching need is still suggested to them?"""
    from tests.helpers import login
    need, other_need = docking["need"], barred["other_need"]
    for name in ("affiliated", "conflicted", "colleague"):
        expert = barred["experts"][name]
        suggested = {s.listing.id for s in queries.needs_for_user(expert, k=20)[0]}
        assert other_need.id in suggested and need.id not in suggested, name
        html = login(app.test_client(), expert).get("/suggestions").get_data(as_text=True)
        assert f'data-id="{other_need.id}"' in html and f'data-id="{need.id}"' not in html
    other_conflict = barred["experts"]["other_conflict"]
    suggested = {s.listing.id for s in queries.needs_for_user(other_conflict, k=20)[0]}
    assert need.id in suggested and other_need.id not in suggested


def test_suggested_needs_skip_a_firm_that_shares_a_member_with_the_experts_institute(matching, docking, make,
                                                                                      world):
    """An expert posts for their institute; a colleague at the institute is also a member of the firm. Is the
    firm's need kept out of the expert's suggestions (the colleague could answer for both sides, which the
    pairing rules refuse), while it is suggested once that overlap is gone?"""
    institute = make.org(kind="institute", name="交叉研究所")
    expert = make.user(Role.EXPERT, org=institute)
    make.capability(expert, **BATTERY_CAP_ZH)
    bridge = make.user(None, org=institute)
    membership = Membership(user_id=bridge.id, organization_id=world["firm"].id)
    db.session.add(membership)
    db.session.commit()
    assert docking["need"].id not in {s.listing.id for s in queries.needs_for_user(expert, k=20)[0]}
    db.session.delete(membership)
    db.session.commit()
    assert docking["need"].id in {s.listing.id for s in queries.needs_for_user(expert, k=20)[0]}


def test_match_page_sees_a_member_who_joined_later(matching, docking, barred, world, client_as):
    """Once the ranking is memoised, does an expert who then joins the firm (and so would sit on both sides)
    leave the firm's match page, and come back when they leave?"""
    need, cap = docking["need"], barred["caps"]["elsewhere"]
    _match_page_follows(Membership(user_id=barred["experts"]["elsewhere"].id, organization_id=world["firm"].id),
                        client_as("enterprise"), need, cap)


def test_suggestions_arrive_with_their_experts_loaded(matching, docking, make, world):
    """Do the capabilities a need's matches return come with their experts' names already loaded (pages
    such as bulk assignment name each one: no query per expert)?"""
    from sqlalchemy import event
    for i in range(4):
        expert = make.user(Role.EXPERT, org=world["institute"])
        make.capability(expert, title=f"低温电池热管理方案 {i}", field="new_energy", summary="电池低温预热",
                        description="-20℃环境下电池包快速预热。")
    need_id = docking["need"].id
    db.session.expunge_all()  # nothing already in the session: what the page reads comes from the query
    suggestions = queries.capabilities_for_need(db.session.get(Need, need_id), k=10)
    assert len({s.listing.expert_id for s in suggestions}) >= 3
    seen = []
    listener = lambda *args: seen.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        names = [s.listing.expert.user.name for s in suggestions if s.listing.expert is not None]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert names and seen == []


def test_the_digest_ranks_only_the_needs_published_since_the_last_one(matching, docking, make, world):
    """With the engine on, are an expert's digest suggestions chosen among the needs published since the last
    digest (a new need ranked below older, closer ones was never sent), and nothing older?"""
    from datetime import timedelta

    from matchmaker.core.time import utcnow
    from matchmaker.pairings.cli import _new_needs_for
    since = utcnow()
    newer = make.need(world["other_enterprise"], title="冷链物流车厢温控系统优化", industry="new_energy",
                      problems="冷藏车厢温度波动大", targets="温差≤1℃")
    assert newer.published_at > since and docking["need"].published_at <= since
    found = _new_needs_for(world["expert"], since - timedelta(seconds=0))
    assert [n.id for n in found] == [newer.id]

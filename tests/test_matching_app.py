"""Does the web app match for real: real embedding model, real FAISS index, rows from the database?"""
from __future__ import annotations

import pytest

from matchmaker import matching_service as ms
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops

pytestmark = pytest.mark.slow

BATTERY_NEED = dict(title="储能锂电池低温放电性能提升", industry="new_energy",
                    background="公司生产储能用磷酸铁锂电池，北方冬季客户投诉容量衰减。",
                    problems="零下20℃时放电容量只有常温的55%，电解液粘度升高、负极析锂。",
                    targets="-20℃放电容量保持率≥85%，循环寿命≥2000次。")
BATTERY_CAP_EN = dict(title="Low-temperature electrolyte for lithium-ion cells", kind="achievement",
                      summary="Wide-temperature electrolyte and anode coating for lithium batteries.",
                      description="Our electrolyte keeps 88% of discharge capacity at -20 °C and suppresses "
                                  "lithium plating on graphite anodes; validated over 2500 cycles.",
                      field="new_energy", trl=6, coop_modes=["license"], hub_city="qingdao")
OFF_TOPIC_CAPS = [
    dict(title="中药材重金属快速检测方法", summary="基于光谱的中药材重金属快速检测。",
         description="采用X射线荧光光谱，10分钟内检测铅、镉、砷、汞含量。", field="biomedicine"),
    dict(title="海洋牧场网箱水质在线监测", summary="网箱养殖溶解氧、温度在线监测系统。",
         description="浮标式传感器与4G回传，实时预警低氧。", field="marine"),
    dict(title="工业机器人焊缝跟踪视觉系统", summary="激光视觉焊缝跟踪。",
         description="结构光传感器实时纠偏，焊接精度±0.2mm。", field="smart_manufacturing"),
]


@pytest.fixture
def matching(app, tmp_path):
    """Matching switched on for this test, with its own empty index folder."""
    saved = {k: app.config[k] for k in ("MATCHMAKER_MATCHING", "MATCHMAKER_INDEX_DIR")}
    app.config.update(MATCHMAKER_MATCHING=True, MATCHMAKER_INDEX_DIR=str(tmp_path / "embeddings"))
    app.extensions[ms.EXTENSION_KEY] = None
    yield
    app.config.update(saved)
    app.extensions[ms.EXTENSION_KEY] = None


@pytest.fixture
def docking(make, world):
    """A Chinese battery need, the right English capability from another city, and off-topic ones."""
    need = make.need(world["enterprise"], **BATTERY_NEED)
    right = make.capability(world["expert"], **BATTERY_CAP_EN)
    others = [make.capability(world["expert"], **kw) for kw in OFF_TOPIC_CAPS]
    own_org = make.capability(world["enterprise"], title="本公司储能电池低温电解液", field="new_energy",
                              summary="低温电解液", description="-20℃放电容量保持率90%")
    return {"need": need, "right": right, "others": others, "own_org": own_org}


def test_need_page_ranks_english_capability_first_with_evidence(matching, docking, client_as):
    """Does a Chinese need get the right English capability first, with evidence, and never its own org's?"""
    response = client_as("enterprise").get(f"/needs/{docking['need'].id}/matches?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    ids = [int(x) for x in __import__("re").findall(r'class="card card-listing mb-2 match-item" data-id="(\d+)"', html)]
    assert ids[0] == docking["right"].id
    assert docking["own_org"].id not in ids
    assert "Cross-language match" in html and "Cross-region" in html
    assert "sentence similarity" in html


def test_published_listing_is_matchable_without_rebuild(matching, docking, make, world, client_as):
    """Is a capability published after the index was built found at once, and gone once closed?"""
    assert ms.capabilities_for_need(docking["need"], k=10)  # builds the index from the database
    late = make.capability(world["expert"], title="锂电池负极析锂抑制与低温快充", field="new_energy",
                           summary="抑制低温析锂的负极包覆技术", description="-20℃下充放电容量保持率86%，析锂显著减少。")
    found = [s.listing.id for s in ms.capabilities_for_need(docking["need"], k=3)]
    assert late.id in found
    ops.close_listing(late, world["expert"])
    db.session.commit()
    assert late.id not in [s.listing.id for s in ms.capabilities_for_need(docking["need"], k=10)]


def test_missing_or_corrupt_index_is_rebuilt_from_database(matching, docking, app):
    """After the index files are corrupted, does a new engine notice and rebuild from the database?"""
    from pathlib import Path
    first = [s.listing.id for s in ms.capabilities_for_need(docking["need"], k=5)]
    for f in Path(app.config["MATCHMAKER_INDEX_DIR"]).iterdir():
        if f.is_file():
            f.write_bytes(b"garbage")
    app.extensions[ms.EXTENSION_KEY] = None  # a fresh process
    again = [s.listing.id for s in ms.capabilities_for_need(docking["need"], k=5)]
    assert again == first


def test_filters_are_hard(matching, docking):
    """Do the hub-city and field filters exclude non-matching capabilities entirely?"""
    in_qingdao = ms.capabilities_for_need(docking["need"], k=10, hub_city="qingdao")
    assert {s.listing.hub_city for s in in_qingdao} == {"qingdao"}
    marine = ms.capabilities_for_need(docking["need"], k=10, field_code="marine")
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

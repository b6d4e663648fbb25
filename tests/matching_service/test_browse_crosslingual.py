"""Does the browse pages' search box find listings across languages — an English query finding Chinese needs
and capabilities ranked by the real matching engine — while showing nobody a listing they may not see, keeping
the page's facet filters, repeating no keyword result, and leaving the page as it was when matching is off?"""
from __future__ import annotations

import re

import pytest

from matchmaker import matching_service as ms
from tests.helpers import BATTERY_NEED

QUERY = "low temperature lithium battery electrolyte"

OFF_TOPIC_NEEDS = [
    dict(title="中药材重金属快速检测", industry="biomedicine", background="中药饮片企业需要快速筛查原料。",
         problems="铅、镉、砷检测周期长。", targets="10分钟内出结果，检出限≤0.1 mg/kg。"),
    dict(title="工业机器人焊缝跟踪", industry="smart_manufacturing", background="焊接车间人工示教效率低。",
         problems="厚板多道焊焊缝偏移无法实时纠正。", targets="跟踪精度±0.2mm。"),
]


def _ids(html: str) -> tuple[list[int], list[int]]:
    """(keyword results, related results) listing ids, in page order."""
    keyword, _sep, related = html.partition('id="related-results"')
    cards = re.compile(r'data-listing-id="(\d+)"')
    return [int(i) for i in cards.findall(keyword)], [int(i) for i in cards.findall(related)]


@pytest.mark.slow
def test_english_query_finds_chinese_need_never_a_hidden_one(matching, make, world, client, client_as):
    """Does "low temperature lithium battery electrolyte" on /needs show the Chinese battery need under the
    keyword results — never a coordinators-only need to an anonymous visitor, never a keyword result twice?"""
    battery = make.need(world["enterprise"], **BATTERY_NEED)
    hidden = make.need(world["other_enterprise"], visibility="coordinators", industry="new_energy",
                       title="动力电池低温电解液添加剂开发", background="电池企业冬季低温性能不足。",
                       problems="低温电解液粘度高，锂电池零下20℃放电容量衰减。", targets="-20℃容量保持率≥85%。")
    english = make.need(world["other_enterprise"], title="Low temperature lithium battery electrolyte supplier",
                        background="We assemble packs for cold regions.",
                        problems="Our electrolyte freezes below -30 °C.", targets="Capacity retention ≥ 80 % at -30 °C.")
    others = [make.need(world["enterprise"], **kw) for kw in OFF_TOPIC_NEEDS]

    html = client.get("/needs", query_string={"q": QUERY, "lang": "en"}).get_data(as_text=True)
    keyword, related = _ids(html)
    assert keyword == [english.id]                     # the substring search is as before
    assert "Related listings across languages" in html
    assert related and related[0] == battery.id        # the Chinese need, found from English
    assert english.id not in related                   # already listed above
    assert hidden.id not in keyword + related
    assert set(related) <= {battery.id} | {o.id for o in others}

    # the hidden need is rankable: a coordinator, who may see it, gets it in the same section
    _kw, for_coordinator = _ids(client_as("coordinator").get("/needs", query_string={"q": QUERY})
                                .get_data(as_text=True))
    assert hidden.id in for_coordinator[:2] and battery.id in for_coordinator[:2]


@pytest.mark.slow
def test_related_keeps_facets_and_fills_an_empty_page(matching, make, world, client):
    """With no keyword match on /capabilities, does "battery recycling" say so and show the related Chinese
    battery capabilities — only those of the chosen hub city?"""
    in_chengdu = make.capability(world["expert"], title="退役动力电池梯次利用与材料回收", hub_city="chengdu",
                                 summary="退役锂电池拆解、检测分选与正极材料湿法回收。",
                                 description="镍钴锰回收率≥98%，梯次利用储能电池一致性分选。")
    in_qingdao = make.capability(world["expert"], title="废旧锂电池正极材料直接再生", hub_city="qingdao",
                                 summary="废旧磷酸铁锂电池正极补锂再生。", description="再生材料容量恢复至新料97%。")
    off_topic = make.capability(world["expert"], title="海洋牧场网箱水质在线监测", hub_city="chengdu",
                                field="marine", summary="溶解氧、温度在线监测。", description="浮标式传感器实时预警低氧。")

    html = client.get("/capabilities", query_string={"q": "battery recycling", "hub_city": "chengdu",
                                                     "lang": "en"}).get_data(as_text=True)
    keyword, related = _ids(html)
    assert keyword == []
    assert "No exact keyword match." in html and "Nothing found." not in html
    assert related[0] == in_chengdu.id
    assert in_qingdao.id not in related
    assert set(related) <= {in_chengdu.id, off_topic.id}


def test_matching_off_leaves_the_page_unchanged(make, world, client, app):
    """With matching off, is an English query with no keyword match still just "Nothing found", with no
    related section and no engine loaded?"""
    assert not app.config["MATCHMAKER_MATCHING"]
    make.need(world["enterprise"], **BATTERY_NEED)
    html = client.get("/needs", query_string={"q": QUERY, "lang": "en"}).get_data(as_text=True)
    assert 'id="related-results"' not in html and "Related listings" not in html
    assert "Nothing found." in html and "No exact keyword match." not in html
    assert app.extensions.get(ms.EXTENSION_KEY) is None

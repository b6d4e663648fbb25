"""Dashboards: numbers on a small hand-built data set, scoping, access, CSV export."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.dashboards import metrics
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.pairings.models import Pairing
from matchmaker.vouchers import operations as vops
from tests.helpers import login

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc)


def pairing(need, cap, judge, state, judged_days=None, amount=None):
    judged = state not in ("suggested", "proposed", "declined", "pending_review")
    p = Pairing(need_id=need.id, capability_id=cap.id, expert_id=cap.expert_id, state=state, origin="coordinator",
                judged_by_id=judge.id if judged else None,
                judged_at=need.published_at + timedelta(days=judged_days) if judged else None,
                judgment_comment="不匹配" if state == "rejected" else None,
                contract_type="service" if state == "contract_signed" else None,
                contract_amount=Decimal(amount) if state == "contract_signed" else None,
                outcome_note="未谈拢" if state == "failed" else None)
    db.session.add(p)
    return p


@pytest.fixture
def data(make, world):
    """Chongqing: 5 posted needs, 4 docked after 2, 4, 6 and 10 days (median 5), one with only a proposal.
    Chengdu: 1 posted need, not docked (a rejected pairing). One draft need (not posted) in Chongqing.
    Capabilities are in Chengdu, so the 4 Chongqing dockings are cross-region; one Chengdu docking would not be."""
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    caps = [make.capability(world["expert"], title=f"能力 {i} 号") for i in range(2)]  # chengdu
    needs = [make.need(world["enterprise"], title=f"重庆需求 {i}") for i in range(5)]
    cd_need = make.need(world["other_enterprise"], title="成都需求 0", hub_city="chengdu")
    make.need(world["enterprise"], status="draft", title="草稿需求")
    for i, n in enumerate(needs + [cd_need]):
        n.published_at = T0 + timedelta(days=i)
    db.session.commit()
    # need 0: approved after 2 days, plus a later contract on the second capability (first approval counts)
    pairing(needs[0], caps[0], coord, "approved", 2)
    pairing(needs[0], caps[1], coord, "contract_signed", 3, "120000.50")
    pairing(needs[1], caps[0], coord, "meeting_scheduled", 4)
    pairing(needs[2], caps[0], coord, "contract_signed", 6, "80000")
    pairing(needs[3], caps[0], coord, "failed", 10)
    pairing(needs[4], caps[0], coord, "proposed")
    pairing(cd_need, caps[0], coord, "rejected", 1)
    db.session.commit()
    v = vops.issue_voucher(coord, world["firm"], amount=Decimal("50000"), expires_on=date(2099, 1, 1),
                           hub_city="chongqing")
    signed = db.session.query(Pairing).filter_by(need_id=needs[2].id).one()
    vops.redeem(v, signed, Decimal("30000"), world["enterprise"])
    db.session.commit()
    return {**world, "coord": coord}


def test_numbers_per_city_and_overall_on_a_hand_built_data_set(data):
    """Do posted, docked, rate, median days, outcomes, contract value, cross-region and voucher totals match
    what we counted by hand?"""
    rows, overall = metrics.compute()
    by = {r.hub_city: r for r in rows}
    cq, cd = by["chongqing"], by["chengdu"]
    assert (cq.needs_posted, cq.needs_docked, cq.docking_rate) == (5, 4, 0.8)
    assert cq.meets_target
    assert cq.median_days_to_docking == pytest.approx(5.0)  # 2, 4, 6, 10 days → (4 + 6) / 2
    assert (cq.outcomes["approved"], cq.outcomes["contract_signed"], cq.outcomes["meeting_scheduled"],
            cq.outcomes["failed"], cq.outcomes["proposed"]) == (1, 2, 1, 1, 1)
    assert cq.contract_value == Decimal("200000.50")
    assert cq.cross_region_dockings == 5  # every docked pairing of Chongqing needs is with a Chengdu capability
    assert (cq.vouchers_issued, cq.vouchers_redeemed) == (Decimal("50000.00"), Decimal("30000.00"))
    assert (cd.needs_posted, cd.needs_docked, cd.docking_rate, cd.median_days_to_docking) == (1, 0, 0.0, None)
    assert cd.outcomes["rejected"] == 1 and cd.cross_region_dockings == 0
    assert (overall.needs_posted, overall.needs_docked) == (6, 4)
    assert overall.docking_rate == pytest.approx(4 / 6) and not overall.meets_target
    assert overall.median_days_to_docking == pytest.approx(5.0)
    assert overall.contract_value == Decimal("200000.50")


def test_city_filter_limits_every_number(data):
    """Does asking for one hub city leave out the others entirely?"""
    rows, overall = metrics.compute("chengdu")
    assert [r.hub_city for r in rows] == ["chengdu"]
    assert (overall.needs_posted, overall.needs_docked, overall.vouchers_issued) == (1, 0, Decimal("0"))


def test_scoped_coordinator_sees_their_city_by_default_and_others_are_refused(data, app, client_as):
    """Does a coordinator scoped to Chongqing get Chongqing by default, may they switch to all, and are
    enterprises and experts refused?"""
    client = login(app.test_client(), data["coord"])
    page = client.get("/dashboards")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="dashboard-data"' in html and "chart.umd.min.js" in html and "80.0 %" in html
    assert '<option value="chongqing" selected' in html
    assert "66.7 %" in client.get("/dashboards?hub_city=all").get_data(as_text=True)
    for role in ("enterprise", "expert"):
        assert client_as(role).get("/dashboards").status_code == 403
        assert client_as(role).get("/dashboards/export.csv").status_code == 403


def test_csv_export_has_a_bom_a_header_and_the_numbers(data, client_as):
    """Does the CSV start with a UTF-8 BOM and carry one row per city plus the overall row with the numbers?"""
    resp = client_as("admin").get("/dashboards/export.csv?hub_city=all")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    body = resp.data.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body[1:])))
    by = {r["hub_city"]: r for r in rows}
    assert set(by) == {"chongqing", "chengdu", "all"}
    assert (by["chongqing"]["needs_posted"], by["chongqing"]["needs_docked"], by["chongqing"]["docking_rate"]) == (
        "5", "4", "0.8000")
    assert by["chongqing"]["median_days_to_first_approved_pairing"] == "5.00"
    assert by["chongqing"]["contract_value_cny"] == "200000.50"
    assert by["chongqing"]["pairings_contract_signed"] == "2"
    assert by["all"]["needs_posted"] == "6" and by["all"]["docking_rate"] == "0.6667"
    assert by["chongqing"]["vouchers_redeemed_cny"] == "30000.00"


def test_empty_dashboard_renders(app, make):
    """Does the dashboard render an empty state (no 500) when nothing has been posted?"""
    admin = make.user(Role.ADMIN)
    resp = login(app.test_client(), admin).get("/dashboards")
    assert resp.status_code == 200


# -- review fix (2026-12-01): days to docking after a re-publication -----------------------------------------


def test_republishing_an_edited_need_keeps_its_first_publication_date_and_kpi(make, world):
    """Regression (2026-12-01): Does a need first approved 5 days after publication still count 5 days to docking (and keep its
    publication date) after it is edited and published again?"""
    need = make.need(world["enterprise"])
    cap = make.capability(world["expert"])
    first_published = utcnow().replace(microsecond=0) - timedelta(days=30)
    need.published_at = first_published
    db.session.commit()
    db.session.add(Pairing(need_id=need.id, capability_id=cap.id, expert_id=cap.expert_id, state="approved",
                           origin="coordinator", judged_by_id=world["coordinator"].id,
                           judged_at=first_published + timedelta(days=5)))
    db.session.commit()

    def median_days():
        rows, _overall = metrics.compute()
        return {r.hub_city: r for r in rows}["chongqing"].median_days_to_docking

    assert median_days() == pytest.approx(5.0)

    assert ops.update_listing(need, world["enterprise"], {"title": "低温锂电池放电性能提升（修订）"})
    db.session.commit()
    assert need.status == "submitted"
    ops.publish_listing(need, make.moderator())
    db.session.commit()
    db.session.expire_all()
    assert need.status == "published" and need.published_at == first_published
    assert median_days() == pytest.approx(5.0)


@pytest.mark.nodb
def test_each_pairing_state_has_its_own_colour():
    """Regression (2026-12-07): the outcome donut repeated colours for different states; does every state have
    a colour no other state has?"""
    from matchmaker.dashboards.views import OUTCOME_COLOURS
    from matchmaker.pairings.models import PairingState
    colours = [OUTCOME_COLOURS[s.value] for s in PairingState]
    assert len(set(colours)) == len(colours)


def test_the_donut_gets_the_colours(client_as):
    """Does the dashboard hand the chart a colour per state, in the order of its labels?"""
    from matchmaker.dashboards.views import OUTCOME_COLOURS
    page = client_as("admin").get("/dashboards").get_data(as_text=True)
    assert all(colour in page for colour in OUTCOME_COLOURS.values())

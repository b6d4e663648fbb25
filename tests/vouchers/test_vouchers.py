"""Innovation vouchers (科技创新券): issue, redeem against signed contracts, ledger invariants, concurrency, pages."""
from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import HubCity, Role
from matchmaker.core.time import utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.pairings.models import Pairing
from matchmaker.vouchers import operations as ops
from matchmaker.vouchers.models import Voucher, VoucherEntry, signed_amount
from tests.helpers import login

FUTURE = date.today() + timedelta(days=365)


def signed_pairing(need, cap, judge, amount="100000.00", state="contract_signed") -> Pairing:
    """A pairing row in ``state`` with the columns the CHECK constraints require."""
    p = Pairing(need_id=need.id, capability_id=cap.id, expert_id=cap.expert_id, state=state, origin="coordinator",
                judged_by_id=judge.id, judged_at=utcnow(),
                contract_type="service" if state == "contract_signed" else None,
                contract_amount=Decimal(amount) if state == "contract_signed" else None)
    db.session.add(p)
    db.session.commit()
    return p


@pytest.fixture
def vw(make, world):
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    need = make.need(world["enterprise"])  # chongqing
    cap = make.capability(world["expert"])  # chengdu
    cap2 = make.capability(world["expert"], title="另一项低温技术")
    pairing = signed_pairing(need, cap, coord)
    return {**world, "coord": coord, "need": need, "cap": cap, "cap2": cap2, "pairing": pairing}


def issue(vw, amount="50000", city="chongqing", org=None) -> Voucher:
    v = ops.issue_voucher(vw["coord"], org or vw["firm"], amount=Decimal(amount), expires_on=FUTURE, hub_city=city)
    db.session.commit()
    return v


def entries(voucher) -> list[VoucherEntry]:
    return db.session.scalars(select(VoucherEntry).where(VoucherEntry.voucher_id == voucher.id)
                              .order_by(VoucherEntry.id)).all()


def assert_ledger_consistent(voucher) -> None:
    db.session.expire_all()
    v = db.session.get(Voucher, voucher.id)
    total = db.session.scalar(select(func.coalesce(func.sum(signed_amount()), 0))
                              .where(VoucherEntry.voucher_id == v.id))
    assert Decimal(total).quantize(Decimal("0.01")) == v.balance >= 0
    assert v.ledger_balance() == v.balance


def test_issue_creates_the_voucher_its_issue_entry_and_an_audit_event(vw):
    """Does issuing a voucher create it with full balance, exactly one '+' ledger entry and an audit event?"""
    v = issue(vw, "50000")
    assert (v.amount, v.balance, v.status, v.hub_city) == (Decimal("50000.00"), Decimal("50000.00"), "active",
                                                            "chongqing")
    [e] = entries(v)
    assert (e.kind, e.amount, e.balance_after) == ("issue", Decimal("50000.00"), Decimal("50000.00"))
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "voucher.issue",
                                                       AuditEvent.target_id == v.id)).one()
    assert_ledger_consistent(v)


def test_scoped_coordinator_cannot_issue_for_another_city_and_firms_cannot_issue(vw):
    """May a coordinator scoped to Chongqing issue a Chengdu voucher, or an enterprise issue any? (No.)"""
    with pytest.raises(WorkflowError) as err:
        ops.issue_voucher(vw["coord"], vw["firm"], amount=Decimal(1), expires_on=FUTURE, hub_city="chengdu")
    assert err.value.status == 403
    with pytest.raises(WorkflowError):
        ops.issue_voucher(vw["enterprise"], vw["firm"], amount=Decimal(1), expires_on=FUTURE, hub_city="chongqing")
    with pytest.raises(WorkflowError):  # only enterprises receive vouchers
        ops.issue_voucher(vw["coord"], vw["institute"], amount=Decimal(1), expires_on=FUTURE, hub_city="chongqing")
    assert db.session.scalar(select(func.count(Voucher.id))) == 0


def test_redeem_records_a_cross_region_entry_and_lowers_the_balance(vw):
    """Does a redemption against a signed contract with a provider in another city lower the balance and record
    the cross-region flag and the provider's city?"""
    v = issue(vw, "50000")
    e = ops.redeem(v, vw["pairing"], Decimal("20000"), vw["enterprise"])
    db.session.commit()
    assert (e.kind, e.amount, e.pairing_id, e.cross_region, e.provider_hub_city) == (
        "redeem", Decimal("20000.00"), vw["pairing"].id, True, "chengdu")
    assert v.balance == Decimal("30000.00") and e.balance_after == Decimal("30000.00")
    assert_ledger_consistent(v)


def test_over_redemption_is_refused_with_a_reason_and_changes_nothing(vw):
    """Is redeeming more than the balance refused with the reason, leaving balance, ledger and audit unchanged?"""
    v = issue(vw, "10000")
    audits = db.session.scalar(select(func.count(AuditEvent.id)))
    with pytest.raises(WorkflowError) as err:
        ops.redeem(v, vw["pairing"], Decimal("10000.01"), vw["enterprise"])
    db.session.rollback()
    assert "10000.01" in err.value.reason and "10000.00" in err.value.reason  # the amount and the balance
    db.session.expire_all()
    assert db.session.get(Voucher, v.id).balance == Decimal("10000.00")
    assert len(entries(v)) == 1 and db.session.scalar(select(func.count(AuditEvent.id))) == audits


def test_redemption_cannot_exceed_what_is_left_of_the_contract(vw):
    """With two vouchers, is the total redeemed against one contract capped at its value?"""
    a, b = issue(vw, "80000"), issue(vw, "80000")
    ops.redeem(a, vw["pairing"], Decimal("70000"), vw["enterprise"])
    db.session.commit()
    with pytest.raises(WorkflowError) as err:
        ops.redeem(b, vw["pairing"], Decimal("30000.01"), vw["enterprise"])
    db.session.rollback()
    assert "30000.01" in err.value.reason and "30000.00" in err.value.reason  # the amount and what is left
    ops.redeem(b, vw["pairing"], Decimal("30000"), vw["enterprise"])
    db.session.commit()
    assert ops.redeemed_on_pairing(vw["pairing"].id) == Decimal("100000.00")


def test_same_voucher_cannot_be_redeemed_twice_on_the_same_pairing(vw):
    """Is a second redemption of one voucher on the same pairing refused, by the service and by the database?"""
    v = issue(vw, "50000")
    ops.redeem(v, vw["pairing"], Decimal("1000"), vw["enterprise"])
    db.session.commit()
    with pytest.raises(WorkflowError) as err:
        ops.redeem(v, vw["pairing"], Decimal("1000"), vw["enterprise"])
    db.session.rollback()
    assert err.value.status == 409 and len(entries(v)) == 2
    with pytest.raises(IntegrityError):  # the UNIQUE (voucher_id, pairing_id) constraint
        with db.session.begin_nested():
            db.session.add(VoucherEntry(voucher_id=v.id, kind="redeem", amount=Decimal(1), pairing_id=vw["pairing"].id,
                                        balance_after=Decimal(0), actor_id=vw["enterprise"].id))
    assert_ledger_consistent(v)


@pytest.mark.parametrize("sql, why", [
    ("UPDATE vouchers SET balance = -1 WHERE id = :id", "negative balance"),
    ("UPDATE vouchers SET balance = amount + 1 WHERE id = :id", "balance above face value"),
    ("INSERT INTO voucher_entries (voucher_id, kind, amount, balance_after, cross_region, created_at) "
     "VALUES (:id, 'redeem', 5, 0, false, CURRENT_TIMESTAMP)", "redeem without pairing"),
    ("INSERT INTO voucher_entries (voucher_id, kind, amount, balance_after, cross_region, created_at) "
     "VALUES (:id, 'revoke', 0, 0, false, CURRENT_TIMESTAMP)", "zero amount"),
    ("INSERT INTO voucher_entries (voucher_id, kind, amount, balance_after, cross_region, created_at) "
     "VALUES (:id, 'gift', 5, 0, false, CURRENT_TIMESTAMP)", "unknown kind"),
    ("INSERT INTO voucher_entries (voucher_id, kind, amount, balance_after, cross_region, created_at) "
     "VALUES (:id, 'issue', 5, 5, false, CURRENT_TIMESTAMP)", "second issue entry"),
])
def test_database_constraints_refuse_broken_ledger_rows(vw, sql, why):
    """Does the database itself refuse rows that break the ledger rules (whatever code writes them)?"""
    v = issue(vw, "100")
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.execute(text(sql), {"id": v.id})


def test_only_signed_contracts_of_the_firms_own_needs_can_be_paid(vw, make):
    """Are an approved (unsigned) pairing, another firm's pairing and another firm's user all refused?"""
    v = issue(vw, "50000")
    approved = signed_pairing(vw["need"], vw["cap2"], vw["coord"], state="approved")
    with pytest.raises(WorkflowError) as err:
        ops.redeem(v, approved, Decimal(10), vw["enterprise"])
    assert err.value.status == 409
    db.session.rollback()
    other_need = make.need(vw["other_enterprise"], hub_city="chengdu")
    foreign = signed_pairing(other_need, vw["cap"], vw["coord"])
    with pytest.raises(WorkflowError) as err:
        ops.redeem(v, foreign, Decimal(10), vw["enterprise"])
    assert err.value.status == 404
    db.session.rollback()
    with pytest.raises(WorkflowError) as err:
        ops.redeem(v, vw["pairing"], Decimal(10), vw["other_enterprise"])
    assert err.value.status == 403
    db.session.rollback()
    assert len(entries(v)) == 1


def test_revoke_and_expiry_empty_the_voucher_through_ledger_entries(vw):
    """Do revocation and expiry write a '−' entry for the whole remaining balance and block later redemption?"""
    a, b = issue(vw, "5000"), issue(vw, "7000")
    ops.redeem(a, vw["pairing"], Decimal("1000"), vw["enterprise"])
    ops.revoke(a, vw["coord"], "企业已注销")
    db.session.commit()
    assert (a.status, a.balance, entries(a)[-1].kind, entries(a)[-1].amount) == (
        "revoked", Decimal("0.00"), "revoke", Decimal("4000.00"))
    assert ops.expire_due(FUTURE + timedelta(days=1)) == 1
    db.session.commit()
    db.session.refresh(b)
    assert (b.status, b.balance, entries(b)[-1].kind) == ("expired", Decimal("0.00"), "expire")
    with pytest.raises(WorkflowError):
        ops.redeem(b, vw["pairing"], Decimal(1), vw["enterprise"])
    db.session.rollback()
    for v in (a, b):
        assert_ledger_consistent(v)


def test_totals_equal_the_sum_of_entries_after_many_movements(vw, make):
    """After a mix of issues, redemptions and refusals, does every balance equal the sum of its entries?"""
    vouchers = [issue(vw, amt) for amt in ("999.99", "1234.56", "0.03")]
    caps = [make.capability(vw["expert"], title=f"能力 {i} 号") for i in range(3)]
    pairings = [signed_pairing(vw["need"], c, vw["coord"], amount="1000.00") for c in caps]
    for v in vouchers:
        for p, amount in zip(pairings, ("0.01", "333.33", "999.99"), strict=True):
            try:
                ops.redeem(v, p, Decimal(amount), vw["enterprise"])
                db.session.commit()
            except WorkflowError:
                db.session.rollback()
    for v in vouchers:
        assert_ledger_consistent(v)
    for p in pairings:
        assert ops.redeemed_on_pairing(p.id) <= Decimal("1000.00")


# --- concurrency: two sessions, real commits ---------------------------------------------------------------


def _race_world(app) -> dict:
    from matchmaker.accounts.models import ExpertProfile, Membership, Organization, User
    from matchmaker.listings.models import Capability, Need
    with app.app_context():
        now = utcnow()
        firm = Organization(name="并发企业", kind="enterprise", hub_city="chongqing")
        inst = Organization(name="并发研究院", kind="institute", hub_city="chengdu")
        coord = User(email="coord@race.test", name="协调员", password_hash="x")
        coord.add_role(Role.COORDINATOR)
        member = User(email="firm@race.test", name="企业", password_hash="x")
        member.memberships.append(Membership(organization=firm, is_manager=True))
        expert = User(email="expert@race.test", name="专家", password_hash="x")
        db.session.add_all([firm, inst, coord, member, expert])
        db.session.flush()
        profile = ExpertProfile(user_id=expert.id, affiliation_id=inst.id)
        need = Need(title="并发测试需求", industry="new_energy", status="published", submitted_at=now,
                    published_at=now, reviewed_by_id=coord.id, organization_id=firm.id, hub_city="chongqing")
        db.session.add_all([profile, need])
        db.session.flush()
        pairings = []
        for i in range(2):
            cap = Capability(title=f"并发能力 {i}", kind="achievement", field="new_energy", status="published",
                             submitted_at=now, published_at=now, reviewed_by_id=coord.id, organization_id=inst.id,
                             expert_id=profile.id, hub_city="chengdu")
            db.session.add(cap)
            db.session.flush()
            p = Pairing(need_id=need.id, capability_id=cap.id, expert_id=profile.id, state="contract_signed",
                        origin="coordinator", judged_by_id=coord.id, judged_at=now, contract_type="service",
                        contract_amount=Decimal("100000"))
            db.session.add(p)
            pairings.append(p)
        db.session.flush()
        voucher = ops.issue_voucher(coord, firm, amount=Decimal("60000"), expires_on=FUTURE, hub_city="chongqing")
        db.session.commit()
        return {"voucher": voucher.id, "member": member.id, "pairings": [p.id for p in pairings]}


def test_concurrent_redemptions_cannot_overdraw_a_voucher(separate_app):
    """Two sessions redeem 40,000 each from a 60,000 voucher at the same moment (on two contracts): does exactly
    one succeed, with the balance never below zero and equal to the ledger?"""
    from matchmaker.accounts.models import User
    ids = _race_world(separate_app)
    barrier = threading.Barrier(2)
    outcomes: list = []

    def worker(pairing_id):
        with separate_app.app_context():
            try:
                voucher = db.session.get(Voucher, ids["voucher"])
                user = db.session.get(User, ids["member"])
                pairing = db.session.get(Pairing, pairing_id)
                barrier.wait(timeout=10)
                ops.redeem(voucher, pairing, Decimal("40000"), user)
                db.session.commit()
                outcomes.append("ok")
            except (WorkflowError, OperationalError, IntegrityError) as exc:
                db.session.rollback()
                outcomes.append(type(exc).__name__)
            except Exception as exc:  # anything else is a failure the assertion below reports
                outcomes.append(f"unexpected {exc!r}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(pid,)) for pid in ids["pairings"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 2 and outcomes.count("ok") == 1, outcomes
    assert not any(o.startswith("unexpected") for o in outcomes), outcomes  # the loser was refused, not crashed
    with separate_app.app_context():
        voucher = db.session.get(Voucher, ids["voucher"])
        assert voucher.balance == Decimal("20000.00")
        assert voucher.ledger_balance() == voucher.balance
        assert db.session.scalar(select(func.count(VoucherEntry.id)).where(VoucherEntry.kind == "redeem")) == 1
        db.session.remove()


# --- pages ----------------------------------------------------------------------------------------------

def test_firm_sees_its_voucher_and_redeems_through_the_page(vw, client_as, app):
    """Does the firm see its voucher with balance, and does the page redeem against the chosen contract?"""
    v = issue(vw, "50000")
    client = client_as("enterprise")
    page = client.get("/vouchers").get_data(as_text=True)
    assert v.code in page and "50,000.00" in page
    detail = client.get(f"/vouchers/{v.id}").get_data(as_text=True)
    assert f'value="{vw["pairing"].id}"' in detail
    resp = client.post(f"/vouchers/{v.id}/redeem", data={"pairing_id": vw["pairing"].id, "amount": "12000"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Voucher, v.id).balance == Decimal("38000.00")


def test_over_redemption_through_the_page_is_a_400_with_the_reason(vw, client_as):
    """Does the redemption form refuse an amount above the balance with a 400 and the reason, saving nothing?"""
    v = issue(vw, "1000")
    resp = client_as("enterprise").post(f"/vouchers/{v.id}/redeem",
                                        data={"pairing_id": vw["pairing"].id, "amount": "1000.50"})
    assert resp.status_code == 400
    assert "1000.50" in resp.get_data(as_text=True)  # the reason names the refused amount
    db.session.expire_all()
    assert db.session.get(Voucher, v.id).balance == Decimal("1000.00") and len(entries(v)) == 1


def test_forged_pairing_id_is_refused_without_change(vw, client_as, make):
    """Is a redemption against another firm's pairing id (forged form) refused with 404, saving nothing?"""
    v = issue(vw, "1000")
    other_need = make.need(vw["other_enterprise"], hub_city="chengdu")
    foreign = signed_pairing(other_need, vw["cap"], vw["coord"])
    for pid in (foreign.id, 987654321):
        resp = client_as("enterprise").post(f"/vouchers/{v.id}/redeem", data={"pairing_id": pid, "amount": "10"})
        assert resp.status_code == 404
    db.session.expire_all()
    assert len(entries(v)) == 1


def test_coordinator_issues_through_the_form_and_other_firms_cannot_see_it(vw, client_as, app):
    """Does the issue form create a voucher, and is it hidden (404) from another enterprise?"""
    from tests.helpers import login
    client = login(app.test_client(), vw["coord"])
    resp = client.post("/vouchers/issue", data={"organization_id": vw["firm"].id, "hub_city": "chongqing",
                                                "amount": "8000", "expires_on": FUTURE.isoformat()})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    v = db.session.scalars(select(Voucher)).one()
    assert (v.organization_id, v.amount, v.hub_city) == (vw["firm"].id, Decimal("8000.00"), "chongqing")
    assert client_as("other_enterprise").get(f"/vouchers/{v.id}").status_code == 404
    assert client_as("enterprise").get(f"/vouchers/{v.id}").status_code == 200
    refused = client.post("/vouchers/issue", data={"organization_id": vw["firm"].id, "hub_city": "chengdu",
                                                   "amount": "8000", "expires_on": FUTURE.isoformat()})
    assert refused.status_code == 400  # not one of this coordinator's cities


def test_one_fen_is_redeemable_and_an_absurd_amount_is_a_400(vw, client_as):
    """Can the last 0.01 CNY of a voucher be redeemed, and is 1e30 refused by the form (400) rather than a 500?"""
    v = issue(vw, "100.01")
    second = signed_pairing(vw["need"], vw["cap2"], vw["coord"])  # one redemption per voucher and contract
    client = client_as("enterprise")
    for amount, pairing in (("100", vw["pairing"]), ("0.01", second)):
        resp = client.post(f"/vouchers/{v.id}/redeem", data={"pairing_id": pairing.id, "amount": amount})
        assert resp.status_code == 303, (amount, resp.get_data(as_text=True)[:300])
    db.session.expire_all()
    assert (db.session.get(Voucher, v.id).balance, db.session.get(Voucher, v.id).status) == (Decimal("0.00"),
                                                                                            "exhausted")
    w = issue(vw, "50")
    for absurd in ("1000000000000000000000000000000", "1e30"):  # "1e30" is not how amounts are written: a 400 too
        resp = client.post(f"/vouchers/{w.id}/redeem", data={"pairing_id": vw["pairing"].id, "amount": absurd})
        assert resp.status_code == 400
    assert "金额过大" in resp.get_data(as_text=True) or "120万" in resp.get_data(as_text=True)
    resp = client.post(f"/vouchers/{w.id}/redeem", data={"pairing_id": vw["pairing"].id,
                                                         "amount": "1000000000000000000000000000000"})
    assert "金额过大" in resp.get_data(as_text=True)  # "The amount is too large."
    with pytest.raises(WorkflowError, match="too large|金额过大"):
        ops.redeem(w, vw["pairing"], Decimal("1e30"), vw["enterprise"])
    db.session.rollback()
    assert len(entries(w)) == 1


def test_a_coordinator_of_another_hub_city_cannot_open_the_voucher(vw, make, app):
    """Is a voucher hidden (404) from a coordinator scoped to another hub city, as it is from their index?"""
    from tests.helpers import login
    v = issue(vw, "1000")
    qingdao = login(app.test_client(), make.user(Role.COORDINATOR, hub_city="qingdao"))
    assert v.code not in qingdao.get("/vouchers").get_data(as_text=True)
    assert qingdao.get(f"/vouchers/{v.id}").status_code == 404
    assert login(app.test_client(), vw["coord"]).get(f"/vouchers/{v.id}").status_code == 200


def test_a_voucher_past_its_last_day_shows_expired_and_the_daily_command_closes_it(vw, client_as, app):
    """Does a voucher past its expiry date show as expired with no redeem form, and does
    `matchmaker vouchers-expire` move its balance out through an expire entry?"""
    from matchmaker.vouchers.cli import vouchers_expire
    v = issue(vw, "1000")
    db.session.execute(text("UPDATE vouchers SET expires_on = :d WHERE id = :i"),
                       {"d": date.today() - timedelta(days=2), "i": v.id})
    db.session.commit()
    page = client_as("enterprise").get(f"/vouchers/{v.id}").get_data(as_text=True)
    assert 'name="amount"' not in page and "text-bg-dark" in page  # the expired badge
    result = app.test_cli_runner().invoke(vouchers_expire)
    assert result.exit_code == 0 and "expired: 1" in result.output
    db.session.expire_all()
    v = db.session.get(Voucher, v.id)
    assert (v.status, v.balance, entries(v)[-1].kind) == ("expired", Decimal("0.00"), "expire")
    assert_ledger_consistent(v)


# -- review fixes (2026-12-02): amounts to the fen, expiry notes, clashing codes, an expiry run past a refusal ---


def test_an_amount_of_100_005_is_refused_instead_of_rounded(vw):
    """Regression (2026-12-02): Is an amount of 100.005 (a fraction of a fen) refused with a 400 when issuing and redeeming, instead of
    being rounded, while 100.50 and 100.500 are taken as they are?"""
    with pytest.raises(WorkflowError) as err:
        ops.issue_voucher(vw["coord"], vw["firm"], amount=Decimal("100.005"), expires_on=FUTURE,
                          hub_city="chongqing")
    assert err.value.status == 400
    db.session.rollback()
    assert db.session.scalar(select(func.count(Voucher.id))) == 0
    v = issue(vw, "100.50")
    assert issue(vw, "100.500").amount == Decimal("100.50")
    with pytest.raises(WorkflowError) as err:
        ops.redeem(v, vw["pairing"], Decimal("0.001"), vw["enterprise"])
    assert err.value.status == 400
    db.session.rollback()
    assert len(entries(v)) == 1 and db.session.get(Voucher, v.id).balance == Decimal("100.50")


def test_the_forms_refuse_fractions_of_a_fen(vw, client_as, app):
    """Regression (2026-12-02): Do the issue and redemption forms answer 100.005 with a 400 and a field error, saving nothing?"""
    coord = login(app.test_client(), vw["coord"])
    resp = coord.post("/vouchers/issue", data={"organization_id": vw["firm"].id, "hub_city": "chongqing",
                                               "amount": "100.005", "expires_on": FUTURE.isoformat()})
    assert resp.status_code == 400 and "invalid-feedback" in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Voucher.id))) == 0
    v = issue(vw, "1000")
    resp = client_as("enterprise").post(f"/vouchers/{v.id}/redeem",
                                        data={"pairing_id": vw["pairing"].id, "amount": "10.005"})
    assert resp.status_code == 400
    db.session.expire_all()
    assert db.session.get(Voucher, v.id).balance == Decimal("1000.00") and len(entries(v)) == 1


def test_expiry_entries_carry_no_english_note_and_show_a_translated_label(vw, client_as, app):
    """Regression (2026-12-02): Does the expiry job store no free-text note, and does the ledger show a translated label for expiry
    entries — also for older ones that stored the English word "expired" — while a revocation keeps its reason?"""
    v, w = issue(vw, "1000"), issue(vw, "2000")
    ops.revoke(w, vw["coord"], "企业已注销")
    assert ops.expire_due(FUTURE + timedelta(days=1)) == 1
    db.session.commit()
    expiry = entries(v)[-1]
    assert (expiry.kind, expiry.actor_id, expiry.note) == ("expire", None, None)
    from matchmaker.vouchers.models import SYSTEM_ENTRY_NOTES
    with app.test_request_context():
        label = str(SYSTEM_ENTRY_NOTES["expire"])
    client = client_as("enterprise")
    for note in (None, "expired"):  # as written now, and as older runs wrote it
        db.session.execute(update(VoucherEntry).where(VoucherEntry.id == expiry.id).values(note=note))
        db.session.commit()
        page = client.get(f"/vouchers/{v.id}").get_data(as_text=True)
        assert label in page and ">expired<" not in page
    assert "企业已注销" in client.get(f"/vouchers/{w.id}").get_data(as_text=True)


def test_every_hub_city_has_its_own_code_prefix(vw, world):
    """Regression (2026-12-02): Do Chongqing and Chengdu (and every other hub city) issue codes with distinct prefixes?"""
    assert set(ops.CODE_PREFIXES) == set(HubCity.values())
    assert len(set(ops.CODE_PREFIXES.values())) == len(HubCity.values())
    cq = issue(vw, "10")
    cd = ops.issue_voucher(world["coordinator"], vw["firm"], amount=Decimal(10), expires_on=FUTURE,
                           hub_city="chengdu")
    db.session.commit()
    assert (cq.code[:3], cd.code[:3]) == ("CQ-", "CD-")
    assert len(cq.code.rsplit("-", 1)[1]) >= 10  # at least 5 random bytes


def test_a_code_clash_draws_another_code_instead_of_a_500(vw, app, monkeypatch):
    """Regression (2026-12-02): When a drawn code is already taken, does issuing (through the page) draw another one in a savepoint and
    succeed, and when no free code can be drawn, answer 409 with nothing issued — never a server error?"""
    draws = iter("AAB")  # the first voucher, then a clash, then a free code
    monkeypatch.setattr(ops.secrets, "token_hex", lambda nbytes=None: next(draws) * 2 * (nbytes or 32))
    first = issue(vw, "100")
    coord = login(app.test_client(), vw["coord"])
    data = {"organization_id": vw["firm"].id, "hub_city": "chongqing", "amount": "200",
            "expires_on": FUTURE.isoformat()}
    assert coord.post("/vouchers/issue", data=data).status_code == 303
    codes = db.session.scalars(select(Voucher.code).order_by(Voucher.id)).all()
    assert len(codes) == 2 and codes[0] == first.code and codes[1] != first.code
    assert db.session.scalar(select(func.count(VoucherEntry.id))) == 2
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "voucher.issue")) == 2
    monkeypatch.setattr(ops.secrets, "token_hex", lambda nbytes=None: "A" * 2 * (nbytes or 32))
    assert coord.post("/vouchers/issue", data=data).status_code == 409
    assert db.session.scalar(select(func.count(Voucher.id))) == 2


def test_one_refused_voucher_does_not_stop_the_expiry_run(vw, monkeypatch):
    """Regression (2026-12-02): When one voucher due to expire is refused (e.g. another request revoked it meanwhile), do the other
    vouchers still expire, each through its own entry, and is the refused one left untouched?"""
    a, b, c = issue(vw, "100"), issue(vw, "200"), issue(vw, "300")
    real_lock = ops._lock_voucher

    def lock_refusing_b(voucher_id):
        voucher = real_lock(voucher_id)
        if voucher_id == b.id:
            voucher.note = "touched before the refusal"  # undone with the voucher's savepoint
            raise WorkflowError("This voucher is revoked already.")
        return voucher

    monkeypatch.setattr(ops, "_lock_voucher", lock_refusing_b)
    assert ops.expire_due(FUTURE + timedelta(days=1)) == 2
    db.session.commit()
    db.session.expire_all()
    assert [db.session.get(Voucher, v.id).status for v in (a, b, c)] == ["expired", "active", "expired"]
    assert db.session.get(Voucher, b.id).note is None and [e.kind for e in entries(b)] == ["issue"]
    for v in (a, c):
        assert entries(v)[-1].kind == "expire"
        assert_ledger_consistent(v)


def test_the_forms_read_amounts_as_people_write_them(vw, client_as, app):
    """Regression (2026-12-07): do the issue and redemption forms take "1,000" and "0.1万" as the amounts they
    name, and answer text that names no amount with a field error?"""
    coord = login(app.test_client(), vw["coord"])
    resp = coord.post("/vouchers/issue", data={"organization_id": vw["firm"].id, "hub_city": "chongqing",
                                               "amount": "1,000", "expires_on": FUTURE.isoformat()})
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:500]
    [v] = db.session.scalars(select(Voucher)).all()
    assert v.balance == Decimal("1000.00")
    resp = client_as("enterprise").post(f"/vouchers/{v.id}/redeem",
                                        data={"pairing_id": vw["pairing"].id, "amount": "0.01万"})
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:500]
    db.session.expire_all()
    assert db.session.get(Voucher, v.id).balance == Decimal("900.00")
    resp = coord.post("/vouchers/issue", data={"organization_id": vw["firm"].id, "hub_city": "chongqing",
                                               "amount": "一千", "expires_on": FUTURE.isoformat()})
    assert resp.status_code == 400 and "120万" in resp.get_data(as_text=True)

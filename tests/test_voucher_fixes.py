"""Innovation voucher fixes: amounts to the fen, expiry entries without an English note, codes that cannot clash
into a server error, and an expiry run that survives one refused voucher."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import HubCity
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.vouchers import operations as ops
from matchmaker.vouchers.models import Voucher, VoucherEntry
from tests.conftest import login
from tests.test_vouchers import FUTURE, assert_ledger_consistent, entries, issue, vw  # noqa: F401  (vw: fixture)


def test_an_amount_of_100_005_is_refused_instead_of_rounded(vw):
    """Is an amount of 100.005 (a fraction of a fen) refused with a 400 when issuing and redeeming, instead of
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
    """Do the issue and redemption forms answer 100.005 with a 400 and a field error, saving nothing?"""
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
    """Does the expiry job store no free-text note, and does the ledger show a translated label for expiry
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
    """Do Chongqing and Chengdu (and every other hub city) issue codes with distinct prefixes?"""
    assert set(ops.CODE_PREFIXES) == set(HubCity.values())
    assert len(set(ops.CODE_PREFIXES.values())) == len(HubCity.values())
    cq = issue(vw, "10")
    cd = ops.issue_voucher(world["coordinator"], vw["firm"], amount=Decimal(10), expires_on=FUTURE,
                           hub_city="chengdu")
    db.session.commit()
    assert (cq.code[:3], cd.code[:3]) == ("CQ-", "CD-")
    assert len(cq.code.rsplit("-", 1)[1]) >= 10  # at least 5 random bytes


def test_a_code_clash_draws_another_code_instead_of_a_500(vw, app, monkeypatch):
    """When a drawn code is already taken, does issuing (through the page) draw another one in a savepoint and
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
    """When one voucher due to expire is refused (e.g. another request revoked it meanwhile), do the other
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

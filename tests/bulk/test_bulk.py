"""Bulk onboarding: CSV export and all-or-nothing CSV import of needs and capabilities."""
from __future__ import annotations

import csv
import io

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from matchmaker.bulk import csvio
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need

NEED_COLS = ["organization", "title", "industry", "problems", "targets", "hub_city", "coop_modes",
             "contact_name", "contact_phone", "contact_email", "budget_min", "budget_max", "visibility"]


def need_row(org="重庆甲公司", **kw):
    row = {"organization": org, "title": "批量导入的技术需求", "industry": "new_energy",
           "problems": "零下20℃放电容量不足。", "targets": "保持率≥85%。", "hub_city": "chongqing",
           "coop_modes": "joint_dev;license", "contact_name": "王工", "contact_phone": "023-61234567",
           "contact_email": "", "budget_min": "10", "budget_max": "50", "visibility": "public"}
    row.update(kw)
    return row


def csv_bytes(rows, cols=NEED_COLS, encoding="utf-8-sig") -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in cols})
    return buf.getvalue().encode(encoding)


def upload(client, data: bytes, kind="need", then="submit"):
    return client.post("/bulk/import", data={"kind": kind, "then": then,
                                             "file": (io.BytesIO(data), "listings.csv")},
                       content_type="multipart/form-data")


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def read_csv(body: bytes) -> list[dict]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_round_trip_export_then_import_into_another_org(client_as, make, world):
    """Does an exported need/capability, imported for another organization, come back with the same field values?"""
    ent, expert = world["enterprise"], world["expert"]
    need = make.need(ent, title="=SUM(A1) 需求往返", budget_min=5, budget_max=9, deadline=None,
                     coop_modes=["joint_dev", "license"], contact_email="a@example.com")
    cap = make.capability(expert, title="往返能力 -技术", trl=7)
    coord = client_as("coordinator")
    for kind, model, obj in (("needs", Need, need), ("capabilities", Capability, cap)):
        resp = coord.get(f"/bulk/{kind}.csv")
        assert resp.status_code == 200 and resp.mimetype == "text/csv"
        rows = [r for r in read_csv(resp.data) if r["id"] == str(obj.id)]
        assert len(rows) == 1
        rows[0]["organization"] = "成都乙公司"
        rows[0]["hub_city"] = "chengdu"
        if model is Capability:
            rows[0]["expert_email"] = ""
        header = list(rows[0].keys())
        before = count(model)
        resp = upload(coord, csv_bytes(rows, header), kind=kind[:-1] if kind == "needs" else "capability",
                      then="draft")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert count(model) == before + 1
        new = db.session.scalars(select(model).order_by(model.id.desc()).limit(1)).one()
        assert new.organization_id == world["other_firm"].id and new.status == "draft"
        assert new.created_by_id == world["other_enterprise"].id
        assert new.hub_city == "chengdu"
        for name in csvio.columns(model):
            if name not in ("id", "status", "organization", "expert_email", "hub_city"):
                assert getattr(new, name) == getattr(obj, name), name


def test_one_bad_row_imports_nothing_and_names_row_and_column(client_as, world):
    """If one row of three is invalid, is nothing imported, and does the report name that row and column?"""
    coord = client_as("coordinator")
    before = count(Need)
    data = csv_bytes([need_row(title="第一条需求"), need_row(title="第二条需求", industry="no_such_industry"),
                      need_row(title="第三条需求")])
    resp = upload(coord, data)
    assert resp.status_code == 422
    assert count(Need) == before
    page = resp.get_data(as_text=True)
    assert "Nothing was imported" in page or "未导入" in page or "import-report" in page
    result = csvio.run_import(Need, data, world["coordinator"], submit=True)
    assert [(p.row, p.column) for p in result.errors] == [(3, "industry")]
    # the downloadable report carries the same row and column
    import json
    rep = coord.post("/bulk/import/report.csv", data={"report": json.dumps([[3, "industry", "bad", "error"]])})
    assert resp.status_code == 422 and rep.status_code == 200
    assert read_csv(rep.data)[0] == {"row": "3", "column": "industry", "message": "bad", "severity": "error"}


def test_valid_file_arrives_submitted_for_moderation(client_as, world):
    """Does a valid import create every row as submitted (not published), owned by the org's manager?"""
    coord = client_as("coordinator")
    resp = upload(coord, csv_bytes([need_row(title="需求一号"), need_row(title="需求二号")]))
    assert resp.status_code == 200
    got = db.session.scalars(select(Need).where(Need.title.in_(["需求一号", "需求二号"]))).all()
    assert len(got) == 2
    assert {n.status for n in got} == {"submitted"}
    assert {n.created_by_id for n in got} == {world["enterprise"].id}


def test_gb18030_file_is_accepted(client_as, world):
    """Is a GB18030 file (as Chinese Excel saves CSV) decoded and imported?"""
    coord = client_as("coordinator")
    data = csv_bytes([need_row(title="国标编码的需求")], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    resp = upload(coord, data)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).where(Need.title == "国标编码的需求")) == 1


def test_export_neutralises_formula_injection(client_as, make, world):
    """Are cells starting with = + - @ prefixed with ' in the export, so a spreadsheet does not run them?"""
    make.need(world["enterprise"], title="=HYPERLINK(\"http://x\")", region="+区", contact_name="@王工",
              background="-1+1")
    resp = client_as("coordinator").get("/bulk/needs.csv")
    [row] = [r for r in read_csv(resp.data) if "HYPERLINK" in r["title"]]
    assert row["title"].startswith("'=") and row["region"] == "'+区"
    assert row["contact_name"] == "'@王工" and row["background"] == "'-1+1"
    assert row["coop_modes"] == "joint_dev"


def test_export_status_filter_for_coordinators(client_as, make, world):
    """Does the export default to published listings, and give drafts only when asked?"""
    make.need(world["enterprise"], status="draft", title="草稿需求导出")
    coord = client_as("coordinator")
    titles = lambda url: {r["title"] for r in read_csv(coord.get(url).data)}  # noqa: E731
    assert "草稿需求导出" not in titles("/bulk/needs.csv")
    assert "草稿需求导出" in titles("/bulk/needs.csv?status=draft")
    assert "草稿需求导出" in titles("/bulk/needs.csv?status=all")
    assert coord.get("/bulk/needs.csv?status=bogus").status_code == 400


def test_scoped_coordinator_cannot_import_for_another_city(app, make, world):
    """Can a Chengdu-scoped coordinator import for a Chongqing organization? (No, and nothing is written.)"""
    from tests.helpers import login
    scoped = make.user(Role.COORDINATOR, hub_city="chengdu")
    client = login(app.test_client(), scoped)
    before = count(Need)
    resp = upload(client, csv_bytes([need_row()]))  # 重庆甲公司, hub city chongqing
    assert resp.status_code == 422 and count(Need) == before
    result = csvio.run_import(Need, csv_bytes([need_row()]), scoped, submit=True)
    assert {p.column for p in result.errors} == {"organization", "hub_city"}
    ok = upload(client, csv_bytes([need_row(org="成都乙公司", hub_city="chengdu", title="成都的需求")]))
    assert ok.status_code == 200 and count(Need) == before + 1


@pytest.mark.parametrize("role", ["enterprise", "expert"])
def test_non_coordinator_is_refused(client_as, role):
    """Do enterprise members and experts get 403 on export and import?"""
    c = client_as(role)
    assert c.get("/bulk/needs.csv").status_code == 403
    assert c.get("/bulk/import").status_code == 403
    assert upload(c, csv_bytes([need_row()])).status_code == 403


def test_file_level_problems(client_as, world):
    """Are an empty file, missing required columns, too many rows and bad encoding refused with a clear message?"""
    coord = world["coordinator"]
    with force_locale("en"):  # the messages are checked in English; the UI default is Chinese
        r = csvio.run_import(Need, b"", coord, submit=True)
    assert r.errors and "empty" in r.errors[0].message
    r = csvio.run_import(Need, "organization,title\n重庆甲公司,标题很长\n".encode(), coord, submit=True)
    assert "industry" in r.errors[0].column and "problems" in r.errors[0].message
    r = csvio.run_import(Need, csv_bytes([need_row(title=f"需求{i:05d}") for i in range(csvio.MAX_ROWS + 1)]),
                         coord, submit=True)
    assert r.errors and str(csvio.MAX_ROWS) in r.errors[0].message
    r = csvio.run_import(Need, b"\xff\xfe\x00\x00garbage\x81", coord, submit=True)
    assert r.errors and not r.created
    r = csvio.run_import(Need, csv_bytes([need_row(org="不存在的公司")]), coord, submit=True)
    assert [(p.row, p.column) for p in r.errors] == [(2, "organization")]
    ragged = csv_bytes([need_row(title="第一条需求"), need_row(industry="bad")]) + "多,余,的,单,元,格,,,,,,,,,,\n".encode()
    r = csvio.run_import(Need, ragged, coord, submit=True)
    assert {(p.row, p.column) for p in r.errors} == {(3, "industry"), (4, "")} and not r.created


def test_duplicate_titles_warn_but_import(client_as, world):
    """Does a title repeated within the file produce a warning naming the earlier row, without blocking the import?"""
    r = csvio.run_import(Need, csv_bytes([need_row(title="重复标题需求"), need_row(title="重复标题需求")]),
                         world["coordinator"], submit=False)
    assert r.ok and len(r.created) == 2
    assert [(p.row, p.column) for p in r.warnings] == [(3, "title")]


def test_oversized_upload_is_refused_cleanly(client_as):
    """Is a file over the 2 MB upload limit refused with 413 (never a 500), importing nothing?"""
    before = count(Need)
    big = csv_bytes([need_row()]) + b"x" * (2 * 1024 * 1024 + 10)
    resp = upload(client_as("coordinator"), big)
    assert resp.status_code == 413 and count(Need) == before


def test_import_page_shows_form_and_export_links(client_as):
    """Does a coordinator see the upload form and both export buttons, and the nav item?"""
    page = client_as("coordinator").get("/bulk/import").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and "/bulk/needs.csv" in page
    assert "/bulk/capabilities.csv" in page and 'id="nav-bulk"' in page


def test_needs_cannot_be_imported_for_an_institute(world):
    """Is a need row naming a research institute refused (needs are posted by enterprises, as on the form),
    importing nothing?"""
    before = count(Need)
    result = csvio.run_import(Need, csv_bytes([need_row(org=world["institute"].name)]), world["coordinator"],
                              submit=True)
    assert [(p.row, p.column) for p in result.errors] == [(2, "organization")]
    assert count(Need) == before


def test_a_forged_report_with_an_infinite_row_number_is_a_400(client_as):
    """Is a report whose row number overflows (1e400 parses as infinity) refused with 400, not a 500?"""
    resp = client_as("coordinator").post("/bulk/import/report.csv",
                                         data={"report": '[[1e400, "title", "m", "error"]]'})
    assert resp.status_code == 400


# -- import review fixes (2026-12-02): re-imports, ownership, deactivated accounts, audit actors, GB18030 BOM ---


CAP_COLS = ["organization", "expert_email", "title", "kind", "summary", "description", "field", "trl", "ip",
            "coop_modes", "hub_city", "region"]


def cap_row(org="某研究院", **kw):
    row = {"organization": org, "expert_email": "", "title": "批量导入的科技成果", "kind": "achievement",
           "summary": "宽温域电解液与负极改性。", "description": "低温电解液使电池在-30℃保持80%容量。",
           "field": "new_energy", "trl": "6", "ip": "", "coop_modes": "license", "hub_city": "chongqing",
           "region": "沙坪坝"}
    row.update(kw)
    return row


def import_caps(rows, importer, submit=False):
    return csvio.run_import(Capability, csv_bytes(rows, CAP_COLS), importer, submit=submit)


def test_reimporting_the_same_file_writes_nothing_and_names_the_existing_listing(client_as, make, world):
    """Regression (2026-12-02): Does uploading the same file a second time (a retried upload) refuse every row, naming the listing that
    already exists, instead of silently duplicating every listing?"""
    coord = client_as("coordinator")
    data = csv_bytes([need_row(title="重复上传的需求一"), need_row(title="重复上传的需求二")])
    assert upload(coord, data).status_code == 200
    before = count(Need)
    resp = upload(coord, data)
    assert resp.status_code == 422 and count(Need) == before
    first = db.session.scalars(select(Need).where(Need.title == "重复上传的需求一")).one()
    with force_locale("en"):
        result = csvio.run_import(Need, data, world["coordinator"], submit=True)
    assert [(p.row, p.column) for p in result.errors] == [(2, "title"), (3, "title")]
    assert "重复上传的需求一" in result.errors[0].message and f"#{first.id}" in result.errors[0].message
    # another organization may use the same title; a deleted listing does not block its re-import
    other = csvio.run_import(Need, csv_bytes([need_row(org="成都乙公司", hub_city="chengdu",
                                                       title="重复上传的需求一")]), world["coordinator"], submit=True)
    assert other.ok, other.errors
    for need in db.session.scalars(select(Need).where(Need.organization_id == world["firm"].id,
                                                      Need.title.like("重复上传的需求%"))):
        ops.delete_listing(need, world["enterprise"])
    again = csvio.run_import(Need, data, world["coordinator"], submit=True)
    assert again.ok and len(again.created) == 2


def test_a_capability_title_only_blocks_capabilities(make, world):
    """Regression (2026-12-02): Is the existing-title check limited to listings of the kind imported (a need does not block a
    capability of the same organization and title)?"""
    make.need(world["enterprise"], title="同名的需求和成果")
    result = import_caps([cap_row(org="重庆甲公司", title="同名的需求和成果")], world["coordinator"])
    assert result.ok, result.errors
    again = import_caps([cap_row(org="重庆甲公司", title="同名的需求和成果")], world["coordinator"])
    assert [(p.row, p.column) for p in again.errors] == [(2, "title")]


def test_expert_capability_must_name_an_organization_of_the_expert(make, world):
    """Regression (2026-12-02): Is an expert-owned capability row refused when the expert is neither a member of nor affiliated with the
    named organization (whose members could otherwise edit it), and accepted when they are?"""
    expert = world["expert"]  # a member of 某研究院 only
    before = count(Capability)
    result = import_caps([cap_row(org="成都乙公司", hub_city="chengdu", expert_email=expert.email)],
                         world["coordinator"])
    assert [(p.row, p.column) for p in result.errors] == [(2, "expert_email")]
    assert count(Capability) == before
    member = import_caps([cap_row(expert_email=expert.email.upper(), title="研究院专家的成果")], world["coordinator"])
    assert member.ok, member.errors
    assert member.created[0].created_by_id == expert.id
    affiliated = make.user(Role.EXPERT)
    affiliated.expert_profile.affiliation_id = world["other_firm"].id
    db.session.commit()
    ok = import_caps([cap_row(org="成都乙公司", hub_city="chengdu", expert_email=affiliated.email,
                              title="挂靠专家的成果")], world["coordinator"])
    assert ok.ok, ok.errors
    assert ok.created[0].expert_id == affiliated.expert_profile.id


def test_deactivated_manager_is_never_the_owner(make, world):
    """Regression (2026-12-02): Is a deactivated manager skipped as the owner of imported listings, and is an organization with no
    active manager left reported at validation as a row error on its column (not as a misleading workflow
    error while writing)?"""
    world["enterprise"].active = False
    db.session.commit()
    for submit in (True, False):
        with force_locale("en"):
            result = csvio.run_import(Need, csv_bytes([need_row(title="停用管理员的需求")]), world["coordinator"],
                                      submit=submit)
        assert [(p.row, p.column) for p in result.errors] == [(2, "organization")]
        assert "active manager" in result.errors[0].message and not result.created
    assert db.session.scalar(select(func.count()).where(Need.title == "停用管理员的需求")) == 0
    second = make.user(Role.ENTERPRISE, org=world["firm"])  # a later, active manager
    result = csvio.run_import(Need, csv_bytes([need_row(title="停用管理员的需求")]), world["coordinator"],
                              submit=True)
    assert result.ok, result.errors
    assert result.created[0].created_by_id == second.id and result.created[0].status == "submitted"


def test_deactivated_expert_cannot_own_an_imported_capability(world):
    """Regression (2026-12-02): Is a capability row naming a deactivated expert account refused at validation, on the expert_email
    column, in draft mode too?"""
    world["expert"].active = False
    db.session.commit()
    for submit in (True, False):
        result = import_caps([cap_row(expert_email=world["expert"].email)], world["coordinator"], submit=submit)
        assert [(p.row, p.column) for p in result.errors] == [(2, "expert_email")] and not result.created


def test_gb18030_file_with_its_own_bom_is_accepted(world):
    """Regression (2026-12-02): Is a GB18030 file that begins with the GB18030 byte-order mark (84 31 95 33) imported, rather than
    refused for missing its first column?"""
    data = b"\x84\x31\x95\x33" + csv_bytes([need_row(title="带标记的国标需求")], encoding="gb18030")
    result = csvio.run_import(Need, data, world["coordinator"], submit=True)
    assert result.ok, result.errors
    assert result.created[0].title == "带标记的国标需求"

"""Bulk import review fixes: re-imports, capability ownership, deactivated accounts, audit actors, GB18030 BOM."""
from __future__ import annotations

from flask_babel import force_locale
from sqlalchemy import func, select

from matchmaker.bulk import csvio
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need
from tests.test_bulk import count, csv_bytes, need_row, upload

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
    """Does uploading the same file a second time (a retried upload) refuse every row, naming the listing that
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
    """Is the existing-title check limited to listings of the kind imported (a need does not block a
    capability of the same organization and title)?"""
    make.need(world["enterprise"], title="同名的需求和成果")
    result = import_caps([cap_row(org="重庆甲公司", title="同名的需求和成果")], world["coordinator"])
    assert result.ok, result.errors
    again = import_caps([cap_row(org="重庆甲公司", title="同名的需求和成果")], world["coordinator"])
    assert [(p.row, p.column) for p in again.errors] == [(2, "title")]


def test_expert_capability_must_name_an_organization_of_the_expert(make, world):
    """Is an expert-owned capability row refused when the expert is neither a member of nor affiliated with the
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
    """Is a deactivated manager skipped as the owner of imported listings, and is an organization with no
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
    """Is a capability row naming a deactivated expert account refused at validation, on the expert_email
    column, in draft mode too?"""
    world["expert"].active = False
    db.session.commit()
    for submit in (True, False):
        result = import_caps([cap_row(expert_email=world["expert"].email)], world["coordinator"], submit=submit)
        assert [(p.row, p.column) for p in result.errors] == [(2, "expert_email")] and not result.created


def test_gb18030_file_with_its_own_bom_is_accepted(world):
    """Is a GB18030 file that begins with the GB18030 byte-order mark (84 31 95 33) imported, rather than
    refused for missing its first column?"""
    data = b"\x84\x31\x95\x33" + csv_bytes([need_row(title="带标记的国标需求")], encoding="gb18030")
    result = csvio.run_import(Need, data, world["coordinator"], submit=True)
    assert result.ok, result.errors
    assert result.created[0].title == "带标记的国标需求"

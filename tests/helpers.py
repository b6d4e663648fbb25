"""Shared test helpers: the row factory, signing a client in, and the small builders several domains use.

Fixtures live in ``tests/conftest.py`` (and a domain's own ``conftest.py``); plain functions and constants live
here, so no test module imports another one: ``from tests.helpers import login, PASSWORD``.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from flask.testing import FlaskClient

from matchmaker.accounts.models import ExpertProfile, Membership, Organization, User
from matchmaker.api import auth
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need
from matchmaker.notifications.models import Notification
from matchmaker.pairings import operations as pairing_ops
from matchmaker.pairings.models import PairingState as P

PASSWORD = "Correct-Horse-Battery-9"
GOOD_PASSWORD = "Spring rain on Jialing river 7"


_seq = itertools.count(1)


class Factory:
    """Builds rows with sensible defaults; every call commits (to the test's savepoint)."""

    def org(self, kind="enterprise", hub_city="chongqing", **kw) -> Organization:
        n = next(_seq)
        org = Organization(name=kw.pop("name", f"测试机构{n}"), kind=kind, hub_city=hub_city,
                           region=kw.pop("region", "沙坪坝"), **kw)
        db.session.add(org)
        db.session.commit()
        return org

    def user(self, role: Role | str | None = None, org: Organization | None = None, hub_city=None,
             **kw) -> User:
        n = next(_seq)
        user = User(email=kw.pop("email", f"user{n}@example.test"), name=kw.pop("name", f"用户{n}"), **kw)
        user.set_password(PASSWORD)
        if role is not None:
            user.add_role(role)
            if hub_city:
                user.roles[-1].hub_city = hub_city
        if org is not None:
            user.memberships.append(Membership(organization=org, is_manager=True))
        db.session.add(user)
        if role == Role.EXPERT:
            db.session.add(ExpertProfile(user=user, title="教授", fields=["new_materials"], languages=["zh"]))
        db.session.commit()
        return user

    def need(self, user: User, status="published", **kw) -> Need:
        data = {
            "title": "低温锂电池放电性能提升", "industry": "new_energy",
            "background": "公司生产储能电池，北方客户冬季使用时容量衰减明显。",
            "problems": "零下20℃放电容量不足常温的60%。", "targets": "-20℃放电容量保持率≥85%，循环寿命≥2000次。",
            "hub_city": "chongqing", "region": "两江新区", "coop_modes": ["joint_dev"], "visibility": "public",
            "contact_name": "王工", "contact_phone": "023-61234567", "contact_email": "wang@example.test",
        }
        data.update(kw)
        return self._advance(ops.create_listing(Need, user, data, organization=user.primary_organization),
                             user, status)

    def capability(self, user: User, status="published", **kw) -> Capability:
        data = {
            "title": "低温电解液配方技术", "kind": "achievement", "summary": "宽温域电解液与负极改性。",
            "description": "团队开发的低温电解液使电池在-30℃保持80%容量。", "field": "new_energy", "trl": 6,
            "ip": "ZL202110000000.1", "coop_modes": ["license"], "hub_city": "chengdu", "region": "高新区",
        }
        data.update(kw)
        return self._advance(ops.create_listing(Capability, user, data, organization=user.primary_organization),
                             user, status)

    def _advance(self, listing, owner, status):
        if status in ("submitted", "published", "returned", "closed"):
            ops.submit_listing(listing, owner)
        if status in ("published", "closed"):
            ops.publish_listing(listing, self.moderator())
        if status == "returned":
            ops.return_listing(listing, self.moderator(), "请补充技术指标")
        if status == "closed":
            ops.close_listing(listing, owner)
        db.session.commit()
        return listing

    def moderator(self) -> User:
        if not hasattr(self, "_moderator"):
            self._moderator = self.user(Role.COORDINATOR)
        return self._moderator



def login(client: FlaskClient, user: User) -> FlaskClient:
    """Sign ``client`` in as ``user`` through the session, as flask-login would after a real login."""
    with client.session_transaction() as session:
        session["_user_id"] = user.session_token
        session["_fresh"] = True
    return client


def enterprise_form(**overrides) -> dict:
    """The registration form of a new enterprise and its manager, as the browser posts it."""
    data = {
        "name": "张经理", "email": "Zhang.Manager@Example.com", "password": GOOD_PASSWORD,
        "confirm": GOOD_PASSWORD, "locale": "zh_CN", "account_type": "enterprise",
        "org_name": "重庆新能源电池有限公司", "hub_city": "chongqing", "region": "两江新区",
    }
    data.update(overrides)
    return data


def notes_of(user) -> list:
    """The user's inbox, oldest first."""
    return db.session.scalars(db.select(Notification).where(Notification.user_id == user.id)
                              .order_by(Notification.id)).all()


# -- pairings ------------------------------------------------------------------------------------------------

def pairing_at(pw, state: str):
    """A pairing driven through the real operations up to ``state``; ``pw`` is tests/pairings/conftest.py's fixture."""
    p = pairing_ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    if state == P.PROPOSED:
        return p
    if state == P.DECLINED:
        pairing_ops.respond(p, pw["expert"], "capability", "declined", reason="too_early")
        return p
    pairing_ops.respond(p, pw["enterprise"], "need", "interested", message="欢迎")
    pairing_ops.respond(p, pw["expert"], "capability", "interested", message="可以")
    if state == P.PENDING_REVIEW:
        return p
    pairing_ops.judge(p, pw["coord"], approve=(state != P.REJECTED), comment="理由充分")
    if state in (P.APPROVED, P.REJECTED):
        return p
    if state == P.MEETING_SCHEDULED:
        pairing_ops.schedule_meeting(p, pw["coord"], datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc), "重庆会展中心 3 号桌")
        return p
    if state in (P.IN_PROGRESS, P.CONTRACT_SIGNED, P.FAILED):
        pairing_ops.record_outcome(p, pw["enterprise"], state, contract_type="license", amount="500000",
                           note="未达成一致")
        return p
    raise AssertionError(state)


# -- fairs ---------------------------------------------------------------------------------------------------

T0 = datetime(2031, 5, 20, 1, 0, tzinfo=timezone.utc)  # 09:00 Beijing time


def fair_data(**kw):
    data = {"title": "成渝科技成果供需对接洽谈会", "description": "两地企业与专家一对一洽谈。", "starts_at": T0,
            "ends_at": T0 + timedelta(hours=3), "registration_deadline": T0 - timedelta(days=2),
            "mode": "onsite", "place": "重庆国际博览中心 N1 馆", "hub_city": "chongqing", "slot_minutes": 30,
            "tables": 4}
    data.update(kw)
    return data


# -- API clients -------------------------------------------------------------------------------------------

def make_token(user, name="script", days=None) -> str:
    _token, secret = auth.create_token(user, name, days)
    db.session.commit()
    return secret


class Api:
    """A test client that sends a bearer token on every request."""

    def __init__(self, app, secret: str | None):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, url, **kw):
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url, json=None, **kw):
        return self.client.post(url, json=json, headers=self.headers, **kw)

    def patch(self, url, json=None, **kw):
        return self.client.patch(url, json=json, headers=self.headers, **kw)


# -- listings the real matching engine should pair (tests/conftest.py's ``docking``) ----------------------
BATTERY_NEED = dict(title="储能锂电池低温放电性能提升", industry="new_energy",
                    background="公司生产储能用磷酸铁锂电池，北方冬季客户投诉容量衰减。",
                    problems="零下20℃时放电容量只有常温的55%，电解液粘度升高、负极析锂。",
                    targets="-20℃放电容量保持率≥85%，循环寿命≥2000次。")
BATTERY_CAP_EN = dict(title="Low-temperature electrolyte for lithium-ion cells", kind="achievement",
                      summary="Wide-temperature electrolyte and anode coating for lithium batteries.",
                      description="Our electrolyte keeps 88% of discharge capacity at -20 °C and suppresses "
                                  "lithium plating on graphite anodes; validated over 2500 cycles.",
                      field="new_energy", trl=6, coop_modes=["license"], hub_city="qingdao")
# A brine-wastewater need (a topic none of the other listings touches) and the capability that solves it.
BRINE_NEED = dict(title="高盐废水COD深度降解", industry="chemicals",
                  background="煤化工企业反渗透浓水含盐量高，COD难以达标排放。",
                  problems="浓盐水COD约800mg/L，生化法无效，现有芬顿工艺污泥量大。",
                  targets="出水COD≤50mg/L，吨水处理成本≤15元。")
BRINE_CAP = dict(title="高盐废水催化臭氧氧化深度处理技术", field="chemicals",
                 summary="用于反渗透浓水、煤化工高盐废水的催化臭氧氧化COD降解。",
                 description="非均相催化剂在含盐量10%条件下稳定运行，浓盐水COD由800mg/L降至40mg/L，"
                             "无污泥产生，吨水成本12元。")


#: unrelated capabilities: with them the pool is one the confidence is calibrated for (in a handful of
#: listings even a true match stands out too little to be strong)
FILLERS = [
    ("纺织品活性染料低盐染色工艺", "活性染料低盐染色，节水30%，色牢度4级。"),
    ("茶叶智能揉捻设备", "揉捻压力自适应控制，条索紧结率提高15%。"),
    ("桥梁拉索磁致伸缩无损检测", "在役拉索断丝检测，灵敏度0.5%截面损失。"),
    ("果蔬冷链气调保鲜包装", "微孔膜气调包装，草莓货架期延长至12天。"),
    ("中小学编程教育机器人套件", "图形化编程与传感器模块，适合8至14岁。"),
    ("古建筑木构件白蚁防治", "低毒诱杀系统，三年复发率低于5%。"),
    ("柑橘黄龙病快速分子诊断", "LAMP等温扩增，40分钟田间检测。"),
    ("高速列车受电弓碳滑板材料", "浸金属碳滑板，磨耗率降低30%。"),
    ("陶瓷3D打印光固化浆料", "固含量55%的氧化锆浆料，烧结致密度99%。"),
    ("生猪养殖环境智能通风", "氨气与温湿度联动控制，能耗降低20%。"),
    ("手机天线毫米波封装", "AiP封装天线，28GHz增益8dBi。"),
    ("酱香型白酒窖池微生物调控", "功能菌强化窖泥，优级酒率提升10%。"),
    ("隧道衬砌雷达病害识别", "深度学习识别空洞与脱空，准确率92%。"),
    ("竹纤维模压餐具", "无胶竹纤维模压成型，可降解。"),
    ("无人机电力巡检缺陷识别", "绝缘子破损自动识别，召回率95%。"),
    ("中药配方颗粒指纹图谱质控", "HPLC指纹图谱与多成分含量测定。"),
    ("汽车座椅骨架轻量化设计", "高强钢拓扑优化，减重18%。"),
    ("景区客流预测与调度系统", "多源数据融合，提前2小时预测客流峰值。"),
]


def unrelated_pool(make, user) -> list:
    """Capabilities about nothing in particular (``FILLERS``), so the pool is one the confidence is calibrated on."""
    return [make.capability(user, title=t, summary=d, description=d, field="smart_manufacturing")
            for t, d in FILLERS]


OFF_TOPIC_CAPS = [
    dict(title="中药材重金属快速检测方法", summary="基于光谱的中药材重金属快速检测。",
         description="采用X射线荧光光谱，10分钟内检测铅、镉、砷、汞含量。", field="biomedicine"),
    dict(title="海洋牧场网箱水质在线监测", summary="网箱养殖溶解氧、温度在线监测系统。",
         description="浮标式传感器与4G回传，实时预警低氧。", field="marine"),
    dict(title="工业机器人焊缝跟踪视觉系统", summary="激光视觉焊缝跟踪。",
         description="结构光传感器实时纠偏，焊接精度±0.2mm。", field="smart_manufacturing"),
]

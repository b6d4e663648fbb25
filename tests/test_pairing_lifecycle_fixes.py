"""Pairings whose listing is withdrawn, capacity and colleagues, and what people read about a pairing:
notifications in their own language, a history without raw codes, no silent decline reason."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from conftest import login
from matchmaker.core.enums import Role
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.listings import operations as listing_ops
from matchmaker.notifications.models import Notification
from matchmaker.pairings import operations as ops
from matchmaker.pairings.models import PairingState as P
from test_expert_capacity import _capacity, _pairings_of
from test_pairings import _pairing, pw  # noqa: F401  (pw: the fixture, need + capability + coordinator)


def _notes(user) -> list[Notification]:
    return db.session.scalars(db.select(Notification).where(Notification.user_id == user.id)
                              .order_by(Notification.id)).all()


@pytest.mark.parametrize("withdraw", ["close", "delete"])
def test_withdrawing_a_need_ends_its_open_pairings_and_frees_the_expert(pw, make, withdraw):
    """When the firm closes or deletes its need, does a pairing still waiting for answers end as declined,
    with the expert told and their place freed?"""
    _capacity(pw, 1)
    pairing = _pairing(pw, P.PROPOSED)
    db.session.commit()
    assert _pairings_of(pw["expert"]) == 1
    before = len(_notes(pw["expert"]))
    action = listing_ops.close_listing if withdraw == "close" else listing_ops.delete_listing
    action(pw["need"], pw["enterprise"])
    db.session.commit()
    db.session.refresh(pairing)
    assert pairing.state == P.DECLINED
    assert len(_notes(pw["expert"])) == before + 1
    another = make.need(pw["other_enterprise"], hub_city="chongqing")
    ops.propose_pairing(another, pw["cap"], by=pw["coord"])  # no 409: the place was freed


def test_closing_a_solved_need_keeps_its_docked_pairings(pw):
    """Does a need closed after its pairing was approved leave that pairing approved (meetings and contracts
    go on)?"""
    pairing = _pairing(pw, P.APPROVED)
    db.session.commit()
    listing_ops.close_listing(pw["need"], pw["enterprise"])
    db.session.commit()
    db.session.refresh(pairing)
    assert pairing.state == P.APPROVED


def test_a_capability_deleted_meanwhile_stops_an_answer_and_a_judgment(pw):
    """If the capability was deleted by another request after the pairing was read (its pairings not ended
    yet), are a response and a judgment refused with 409 instead of moving the pairing on?"""
    pairing = _pairing(pw, P.PENDING_REVIEW)
    db.session.commit()
    from matchmaker.core.time import utcnow
    from matchmaker.listings.models import Capability
    db.session.execute(update(Capability).where(Capability.id == pw["cap"].id).values(deleted_at=utcnow()))
    db.session.expire_all()
    with pytest.raises(WorkflowError) as refused:
        ops.judge(pairing, pw["coord"], approve=True)
    assert refused.value.status == 409
    db.session.rollback()
    assert db.session.get(type(pairing), pairing.id).state == P.PENDING_REVIEW


def test_a_colleague_cannot_fill_an_expert_past_their_capacity(pw, make):
    """Can a colleague of the expert (same institute, so "capability side") propose the expert's capability
    once the expert has no place left? (Only the expert may take on more.)"""
    _capacity(pw, 0)
    colleague = make.user(Role.EXPERT, org=pw["institute"])
    with pytest.raises(WorkflowError) as refused:
        ops.propose_pairing(pw["need"], pw["cap"], by=colleague)
    assert refused.value.status == 409


def test_each_person_is_notified_in_their_own_language(pw, make):
    """An expert who uses English declines: does the Chinese-speaking firm get the notice in Chinese, and an
    English-speaking firm member in English?"""
    pw["expert"].locale = "en"
    pw["enterprise"].locale = "zh_CN"
    pairing = _pairing(pw, P.PROPOSED)
    db.session.commit()
    from flask_babel import force_locale
    with force_locale("en"):  # the actor's language
        ops.respond(pairing, pw["expert"], "capability", "declined", reason="too_early")
    db.session.commit()
    note = _notes(pw["enterprise"])[-1]
    assert note.subject.startswith("配对已婉拒：") and note.body == "原因：时机尚早", (note.subject, note.body)
    pw["enterprise"].locale = "en"
    second = ops.propose_pairing(pw["need"], make.capability(pw["expert"], title="另一项能力"), by=pw["coord"])
    db.session.commit()
    with force_locale("zh_CN"):
        ops.respond(second, pw["expert"], "capability", "declined", reason="too_costly")
    db.session.commit()
    note = _notes(pw["enterprise"])[-1]
    assert note.subject.startswith("Pairing declined: ") and note.body == "Reason: Too costly", note.body


def test_the_history_shows_who_answered_and_why_in_words(app, pw):
    """Does the pairing's history read "专家方 · 已拒绝 · 原因：…" on the Chinese page, with none of the raw
    codes ("capability: too_early") it used to show?"""
    pairing = _pairing(pw, P.PROPOSED)
    db.session.commit()
    client = login(app.test_client(), pw["expert"])
    client.post(f"/pairings/{pairing.id}/respond", data={"side": "capability", "decision": "declined",
                                                         "reason": "too_early"})
    page = client.get(f"/pairings/{pairing.id}?lang=zh").get_data(as_text=True)
    history = page.split('id="pairing-history"', 1)[1]
    assert "too_early" not in history and "capability:" not in history
    assert "专家方 · 已婉拒" in history and "时机尚早" in history


def test_decline_has_no_preselected_reason(app, pw):
    """Is the reason list on the answer form empty until the person picks one (a preselected "not relevant"
    would demote the capability for similar needs without anyone saying so)?"""
    pairing = _pairing(pw, P.PROPOSED)
    db.session.commit()
    page = login(app.test_client(), pw["expert"]).get(f"/pairings/{pairing.id}").get_data(as_text=True)
    select = page.split('name="reason"', 1)[1]
    assert select.split("<option", 2)[1].startswith(' value=""')


def test_a_judgment_without_the_version_seen_is_refused(app, pw):
    """Is an approval POST that carries no version answered 409, the pairing left awaiting judgment?"""
    pairing = _pairing(pw, P.PENDING_REVIEW)
    db.session.commit()
    response = login(app.test_client(), pw["coord"]).post(f"/pairings/{pairing.id}/judge",
                                                          data={"decision": "approve"})
    assert response.status_code == 409
    db.session.refresh(pairing)
    assert pairing.state == P.PENDING_REVIEW


def test_the_history_tells_each_message_once_and_leads_a_coordinator_home(app, pw):
    """When the second side's "interested" moves the pairing on, is their message shown once in the history
    (not also on the state change), and does a coordinator's breadcrumb lead to their workspace?"""
    pairing = _pairing(pw, P.PROPOSED)
    ops.respond(pairing, pw["enterprise"], "need", "interested", message="欢迎来厂交流")
    ops.respond(pairing, pw["expert"], "capability", "interested", message="下周可以到厂")
    db.session.commit()
    page = login(app.test_client(), pw["coord"]).get(f"/pairings/{pairing.id}").get_data(as_text=True)
    history = page.split('id="pairing-history"', 1)[1]
    assert history.count("下周可以到厂") == 1
    breadcrumb = page.split('class="breadcrumb"', 1)[1].split("</ol>", 1)[0]
    assert 'href="/coordinate"' in breadcrumb


def test_the_proposer_can_withdraw_a_pairing_not_docked_yet(app, pw):
    """Can the firm that proposed a pairing take it back (declined, the expert told, the history saying
    "withdrawn"), while the expert who merely received it may not, and an approved one stays?"""
    pairing = ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    db.session.commit()
    expert = login(app.test_client(), pw["expert"])
    assert expert.post(f"/pairings/{pairing.id}/withdraw").status_code == 403
    before = len(_notes(pw["expert"]))
    firm = login(app.test_client(), pw["enterprise"])
    assert 'id="withdraw-form"' in firm.get(f"/pairings/{pairing.id}").get_data(as_text=True)
    assert firm.post(f"/pairings/{pairing.id}/withdraw", data={"reason": "需求已调整"}).status_code == 303
    db.session.refresh(pairing)
    assert pairing.state == P.DECLINED and len(_notes(pw["expert"])) == before + 1
    history = firm.get(f"/pairings/{pairing.id}?lang=zh").get_data(as_text=True).split('id="pairing-history"')[1]
    assert "history-withdrawn" in history and "需求已调整" in history


def test_a_docked_pairing_cannot_be_withdrawn(pw):
    """Is an approved pairing out of reach of "withdraw" (409 for the coordinator, no button)?"""
    pairing = _pairing(pw, P.APPROVED)
    db.session.commit()
    assert not pairing.can_withdraw(pw["coord"])
    with pytest.raises(WorkflowError) as refused:
        ops.withdraw(pairing, pw["coord"])
    assert refused.value.status == 409

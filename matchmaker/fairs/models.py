"""Docking fairs (供需对接洽谈会): the event, registered listings, 1:1 meeting requests and the schedule.

The rules that fit on rows are constraints: a fair ends after it starts, one registration per listing and
fair, one request per fair × need × capability, one meeting per (fair, slot, table), and — through
``MeetingParticipant`` — one meeting per person and slot, so even a faulty code path cannot double-book.
That rule is per fair (slots of different fairs do not line up): across fairs the scheduler leaves a person free
in every slot that overlaps a meeting of theirs at another fair (``operations.run_scheduler``).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import (Boolean, CheckConstraint, ForeignKey, ForeignKeyConstraint, Index, Integer, String,
                        Text, UniqueConstraint, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.audit_labels import register_labels
from ..core.enums import HubCity, LabelledEnum, sql_in
from ..core.scope import coordinator_scope_of
from ..core.time import PROGRAMME_TZ, UTCDateTime, utcnow
from ..extensions import db

#: daily session hours (Beijing time) of a fair that runs over several days: the nights in between
#: (SESSION_END → next SESSION_START) have no meetings. Not stored per fair (the model has no such fields).
SESSION_START = time(8, 0)
SESSION_END = time(18, 0)


class FairMode(LabelledEnum):
    ONSITE = "onsite", _l("On site")
    VIDEO = "video", _l("Video")


class FairStatus(LabelledEnum):
    DRAFT = "draft", _l("Draft")
    OPEN = "open", _l("Open for registration")
    CLOSED = "closed", _l("Closed")
    HELD = "held", _l("Held")


class RequestStatus(LabelledEnum):
    REQUESTED = "requested", _l("Requested")
    ACCEPTED = "accepted", _l("Accepted")
    DECLINED = "declined", _l("Declined")
    EXPIRED = "expired", _l("Expired")
    SCHEDULED = "scheduled", _l("Scheduled")


register_labels(state_actions={"fair": FairStatus},
                target_states={"fairs": FairStatus, "fair_meeting_requests": RequestStatus},
                families={"meeting_request": RequestStatus},
                actions={  # state changes are composed: fair.<state>, fair.meeting_<request state>
                    "fair.create": _l("Fair created"),
                    "fair.edit": _l("Fair edited"),
                    "fair.register": _l("Listing registered for a fair"),
                    "fair.meeting_request": _l("Meeting requested"),
                    "fair.schedule": _l("Fair schedule drawn up"),
                    "fair.schedule_clear": _l("Fair schedule cleared"),
                    "fair.meeting_lock": _l("Meeting locked"),
                    "fair.meeting_unlock": _l("Meeting unlocked"),
                    "fair.pairing_not_updated": _l("Pairing not updated by the fair schedule"),
                },
                kinds={"fair": _l("Fair")},
                targets={"fairs": _l("Fair"), "fair_registrations": _l("Fair registration"),
                         "fair_meeting_requests": _l("Meeting request"), "fair_meetings": _l("Fair meeting")},
                categories=[("fair.", _l("Docking fairs"))])


class Fair(db.Model):
    __tablename__ = "fairs"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(f"mode IN {sql_in(FairMode)}", name="mode_known"),
        CheckConstraint(f"status IN {sql_in(FairStatus)}", name="status_known"),
        CheckConstraint(f"hub_city IS NULL OR hub_city IN {sql_in(HubCity)}", name="hub_city_known"),
        CheckConstraint("mode <> 'onsite' OR (place IS NOT NULL AND length(place) > 0)", name="onsite_has_place"),
        CheckConstraint("mode <> 'video' OR (video_url IS NOT NULL AND length(video_url) > 0)",
                        name="video_has_link"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="slot_minutes_range"),
        CheckConstraint("tables BETWEEN 1 AND 500", name="tables_range"),
        CheckConstraint("registration_deadline <= starts_at", name="deadline_before_start"),
        CheckConstraint("length(title) BETWEEN 4 AND 200", name="title_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    mode: Mapped[str] = mapped_column(String(10), nullable=False, default=FairMode.ONSITE.value)
    place: Mapped[str | None] = mapped_column(String(300))
    video_url: Mapped[str | None] = mapped_column(String(500))
    hub_city: Mapped[str | None] = mapped_column(String(20), index=True)
    organizer_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    slot_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    tables: Mapped[int] = mapped_column(Integer, nullable=False, default=10)
    registration_deadline: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=FairStatus.DRAFT.value, index=True)
    #: requests the last scheduler run left out: {request id: reason code}
    schedule_report: Mapped[dict | None] = mapped_column(db.JSON)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    __mapper_args__ = {"version_id_col": version}

    organizer = relationship("Organization")
    coordinator = relationship("User")

    # slots ------------------------------------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        minutes = int((self.ends_at - self.starts_at).total_seconds() // 60)
        return max(0, minutes // self.slot_minutes) if self.slot_minutes else 0

    def slot_start(self, slot: int) -> datetime:
        return self.starts_at + timedelta(minutes=self.slot_minutes * slot)

    def slot_end(self, slot: int) -> datetime:
        return self.slot_start(slot + 1)

    def nights(self) -> list[tuple[datetime, datetime]]:
        """The nights (SESSION_END → next day's SESSION_START, Beijing time) the fair spans entirely: a fair
        over several days pauses then. A fair inside one day, or one evening, has none."""
        day, last = self.starts_at.astimezone(PROGRAMME_TZ).date(), self.ends_at.astimezone(PROGRAMME_TZ).date()
        nights = []
        while day < last:
            begin = datetime.combine(day, SESSION_END, tzinfo=PROGRAMME_TZ)
            end = datetime.combine(day + timedelta(days=1), SESSION_START, tzinfo=PROGRAMME_TZ)
            if self.starts_at <= begin and end <= self.ends_at:
                nights.append((begin, end))
            day += timedelta(days=1)
        return nights

    def slot_days(self) -> list[int | None]:
        """For every slot, the fair's day it belongs to (0, 1, … counted by the nights before it), or None
        for a slot that reaches into a night: the scheduler places no meeting there."""
        nights = self.nights()
        days = []
        for s in range(self.n_slots):
            start, end = self.slot_start(s), self.slot_end(s)
            if any(start < n_end and n_begin < end for n_begin, n_end in nights):
                days.append(None)
            else:
                days.append(sum(1 for _begin, n_end in nights if n_end <= start))
        return days

    @property
    def meeting_slots(self) -> list[int]:
        """The slots meetings can be scheduled in (all of them, unless the fair runs over nights)."""
        return [s for s, day in enumerate(self.slot_days()) if day is not None]

    @property
    def location(self) -> str:
        return (self.place if self.mode == FairMode.ONSITE else self.video_url) or ""

    # permissions ------------------------------------------------------------------------------------
    def can_view(self, user) -> bool:
        return self.status != FairStatus.DRAFT or self.can_manage(user)

    def can_manage(self, user) -> bool:
        """Admins, the organizing coordinator and coordinators whose scope covers the fair's hub city."""
        scope = coordinator_scope_of(user)
        # the organizer manages it only while still a coordinator
        return not scope.is_none and (user.id == self.coordinator_id or scope.covers(self.hub_city))

    def can_see_video_link(self, user) -> bool:
        """The video link is for those who manage the fair and for people with a listing registered at it (its
        owners, and the expert behind a registered capability)."""
        if not getattr(user, "is_authenticated", False):
            return False
        if self.can_manage(user):
            return True
        expert = getattr(user, "expert_profile", None)
        regs = db.session.scalars(select(FairRegistration).where(FairRegistration.fair_id == self.id)).all()
        return any(r.listing.is_owned_by(user)
                   or (expert is not None and r.capability_id is not None and r.capability.expert_id == expert.id)
                   for r in regs)

    def registration_open(self, now: datetime) -> bool:
        return self.status == FairStatus.OPEN and now <= self.registration_deadline

    def __repr__(self) -> str:
        return f"<Fair {self.id} {self.status} {self.title!r}>"


class FairRegistration(db.Model):
    """A published need or capability taking part in a fair, registered by its owner."""

    __tablename__ = "fair_registrations"
    __table_args__ = (
        CheckConstraint("(need_id IS NULL) <> (capability_id IS NULL)", name="one_listing"),
        UniqueConstraint("fair_id", "need_id"),
        UniqueConstraint("fair_id", "capability_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"), nullable=False, index=True)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), index=True)
    capability_id: Mapped[int | None] = mapped_column(ForeignKey("capabilities.id"), index=True)
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    fair = relationship(Fair)
    need = relationship("Need", lazy="joined")
    capability = relationship("Capability", lazy="joined")

    @property
    def listing(self):
        return self.need if self.need_id is not None else self.capability


class MeetingRequest(db.Model):
    """One side asks the other for a 1:1 meeting at the fair (need ↔ capability)."""

    __tablename__ = "fair_meeting_requests"
    __table_args__ = (
        UniqueConstraint("fair_id", "need_id", "capability_id"),
        CheckConstraint(f"status IN {sql_in(RequestStatus)}", name="status_known"),
        CheckConstraint("requested_by_side IN ('need', 'capability')", name="side_known"),
        CheckConstraint("status IN ('requested', 'expired') OR (responded_by_id IS NOT NULL "
                        "AND responded_at IS NOT NULL)", name="answered_has_responder"),
        Index("ix_fair_meeting_requests_fair_status", "fair_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"), nullable=False)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), nullable=False, index=True)
    capability_id: Mapped[int] = mapped_column(ForeignKey("capabilities.id"), nullable=False, index=True)
    requested_by_side: Mapped[str] = mapped_column(String(12), nullable=False)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    pairing_id: Mapped[int | None] = mapped_column(ForeignKey("pairings.id"), index=True)
    message: Mapped[str] = mapped_column(Text, default="", nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=RequestStatus.REQUESTED.value)
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: why the last scheduler run left it out (scheduler reason code), null when scheduled
    unscheduled_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    __mapper_args__ = {"version_id_col": version}

    fair = relationship(Fair)
    need = relationship("Need", lazy="joined")
    capability = relationship("Capability", lazy="joined")
    requester = relationship("User", foreign_keys=[requester_id])
    pairing = relationship("Pairing")
    meeting: Mapped["Meeting | None"] = relationship(back_populates="request", uselist=False)

    @property
    def target_side(self) -> str:
        return "capability" if self.requested_by_side == "need" else "need"

    def listing_of(self, side: str):
        return self.need if side == "need" else self.capability


class Meeting(db.Model):
    """A scheduled 1:1 meeting: one accepted request in one (slot, table) of its fair."""

    __tablename__ = "fair_meetings"
    __table_args__ = (
        UniqueConstraint("fair_id", "slot", "table_no"),
        UniqueConstraint("id", "fair_id", "slot"),  # target of the participants' composite key
        CheckConstraint("slot >= 0", name="slot_positive"),
        CheckConstraint("table_no >= 1", name="table_positive"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"), nullable=False, index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("fair_meeting_requests.id", ondelete="CASCADE"),
                                            nullable=False, unique=True)
    slot: Mapped[int] = mapped_column(Integer, nullable=False)
    table_no: Mapped[int] = mapped_column(Integer, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    #: kept when the scheduler runs again
    locked: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    fair = relationship(Fair)
    request: Mapped[MeetingRequest] = relationship(back_populates="meeting", lazy="joined")
    participants: Mapped[list["MeetingParticipant"]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", passive_deletes=True)


class MeetingParticipant(db.Model):
    """A person in a meeting. (fair, slot, user) is unique: nobody sits at two tables at once.

    ``fair_id`` and ``slot`` are copied from the meeting and tied to it by a composite foreign key, so they
    cannot disagree with it."""

    __tablename__ = "fair_meeting_participants"
    __table_args__ = (
        UniqueConstraint("fair_id", "slot", "user_id"),
        ForeignKeyConstraint(["meeting_id", "fair_id", "slot"],
                             ["fair_meetings.id", "fair_meetings.fair_id", "fair_meetings.slot"],
                             ondelete="CASCADE", name="fk_fair_meeting_participants_meeting"),
    )

    meeting_id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    fair_id: Mapped[int] = mapped_column(nullable=False)
    slot: Mapped[int] = mapped_column(Integer, nullable=False)
    side: Mapped[str] = mapped_column(String(12), nullable=False)

    meeting: Mapped[Meeting] = relationship(back_populates="participants")
    user = relationship("User")

"""Audit events in the reader's language: what happened, to what, which change, and by whom.

The audit trail stores stable codes (``need.submitted``, ``admin.role_grant``, ``users``, ``coordinator:qingdao``);
the pages show them through :func:`describe`, keeping the code for a tooltip. Codes are either fixed
(:data:`ACTION_LABELS`) or a kind followed by a state of that kind's workflow (``pairing.approved``,
``fair.open``…), composed from the kind's name and the state's label. An unknown code is shown as it is.

The labels are text and stay here; the workflow enums that name the states belong to their domains, which
hand them in with :func:`register_labels` when their models are imported (core imports no domain).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .enums import HubCity, LabelledEnum, ListingStatus, Role

#: every fixed action code written with ``audit.record("…")``, plus the finite f-string families whose
#: suffix is a verb rather than a state (``{listing.kind_name}.create`` …); the domains above the ground
#: floor (pairings, fairs, challenges, vouchers) register theirs with :func:`register_labels`
ACTION_LABELS = {
    # accounts and sessions
    "auth.register": _l("Account registered"),
    "auth.login": _l("Signed in"),
    "auth.logout": _l("Signed out"),
    "auth.login_failed": _l("Failed sign-in"),
    "auth.login_throttled": _l("Sign-in blocked after too many attempts"),
    "auth.session_expired": _l("Session expired"),
    "auth.password_change": _l("Password changed"),
    "auth.password_reset_requested": _l("Password reset requested"),
    "auth.password_reset": _l("Password reset"),
    "account.update": _l("Account details updated"),
    "api_token.create": _l("API token created"),
    "api_token.revoke": _l("API token revoked"),
    # administration
    "admin.activate": _l("Account activated"),
    "admin.deactivate": _l("Account deactivated"),
    "admin.role_grant": _l("Role granted"),
    "admin.role_revoke": _l("Role revoked"),
    "admin.role_scope": _l("Role scope changed"),
    "seed.load": _l("Seed data loaded"),
    # organizations
    "org.create": _l("Organization created"),
    "org.update": _l("Organization updated"),
    "org.join_requested": _l("Asked to join an organization"),
    "org.join_approved": _l("Join request approved"),
    "org.join_declined": _l("Join request declined"),
    # listings: f"{listing.kind_name}.create|edit|delete|bulk_import" (state changes are composed)
    "need.create": _l("Need created"),
    "need.edit": _l("Need edited"),
    "need.delete": _l("Need deleted"),
    "need.bulk_import": _l("Need imported in bulk"),
    "need.ask_coordinators": _l("Coordinators asked for a match"),
    "need.strong_match_notified": _l("Told that a strong match was published"),
    "capability.create": _l("Capability created"),
    "capability.edit": _l("Capability edited"),
    "capability.delete": _l("Capability deleted"),
    "capability.bulk_import": _l("Capability imported in bulk"),
}

#: the kind named by an action's first part
KIND_LABELS = {
    "need": _l("Need"),
    "capability": _l("Capability"),
}

#: "<kind>.<state>" actions: the enum whose labels name the state; the domains register theirs
#: (f"pairing.{to}", f"fair.{to}", f"challenge.{to}", f"voucher.{kind.value}")
STATE_ACTIONS: dict[str, type[LabelledEnum]] = {
    "need": ListingStatus,          # f"{listing.kind_name}.{to}"
    "capability": ListingStatus,
}

#: the enums of the two composed families, registered by their domains: "pairing_side" for
#: ``pairing.response.<side>.<decision>``, "meeting_request" for ``fair.meeting_<state>``
FAMILY_ENUMS: dict[str, type[LabelledEnum]] = {}

#: ``pairing.response.<side>.<decision>``
DECISION_LABELS = {"interested": _l("Interested"), "declined": _l("Declined")}

#: filter of the audit page: (action prefix, category)
CATEGORIES = [
    ("auth.", _l("Accounts")),
    ("admin.", _l("Administration")),
    ("need.", _l("Technology needs")),
    ("capability.", _l("Capabilities")),
    ("org.", _l("Organizations")),
    ("api_token.", _l("API tokens")),
]

#: target_type (a table name) → the kind shown before "#id"
TARGET_LABELS = {
    "users": _l("User"),
    "organizations": _l("Organization"),
    "membership_requests": _l("Join request"),
    "api_tokens": _l("API token"),
    "needs": _l("Need"),
    "capabilities": _l("Capability"),
}

#: target_type → the enum of its from_state / to_state; the domains register theirs
TARGET_STATES: dict[str, type[LabelledEnum]] = {
    "needs": ListingStatus,
    "capabilities": ListingStatus,
}

#: states that are not a workflow enum's: account status, session expiry, join requests
OTHER_STATES = {
    "active": _l("Active"),
    "inactive": _l("Deactivated"),
    "idle": _l("Idle timeout"),
    "absolute": _l("Maximum session length"),
    "pending": _l("Awaiting decision"),
    "approved": _l("Approved"),
    "declined": _l("Declined"),
}

#: actions without an actor that a visitor (not signed in) caused; other actor-less events are the system's
VISITOR_ACTIONS = {"auth.login_failed", "auth.login_throttled", "auth.password_reset_requested"}


def register_labels(*, state_actions: dict[str, type[LabelledEnum]] | None = None,
                    target_states: dict[str, type[LabelledEnum]] | None = None,
                    families: dict[str, type[LabelledEnum]] | None = None,
                    actions: dict[str, object] | None = None, kinds: dict[str, object] | None = None,
                    targets: dict[str, object] | None = None,
                    categories: list[tuple[str, object]] | None = None) -> None:
    """A domain's audit vocabulary: its workflow enums — ``state_actions`` (action kind → enum of
    "<kind>.<state>"), ``target_states`` (table → enum of its from/to states), ``families`` (see
    :data:`FAMILY_ENUMS`) — and its labels: fixed ``actions``, action ``kinds``, ``targets`` (table → the
    kind shown before "#id") and the audit filter's ``categories`` (action prefix, label)."""
    STATE_ACTIONS.update(state_actions or {})
    TARGET_STATES.update(target_states or {})
    FAMILY_ENUMS.update(families or {})
    ACTION_LABELS.update(actions or {})
    KIND_LABELS.update(kinds or {})
    TARGET_LABELS.update(targets or {})
    CATEGORIES.extend(c for c in categories or [] if c not in CATEGORIES)


def _compose(kind, event) -> str:
    return _("%(kind)s · %(event)s", kind=kind, event=event)


def action_label(code: str | None) -> str:
    """The action in the reader's language; an unknown code as it is."""
    if not code:
        return ""
    fixed = ACTION_LABELS.get(code)
    if fixed is not None:
        return str(fixed)
    kind, _sep, rest = code.partition(".")
    sides, requests = FAMILY_ENUMS.get("pairing_side"), FAMILY_ENUMS.get("meeting_request")
    if kind == "pairing" and rest.startswith("response.") and sides is not None:
        parts = rest.split(".")
        if len(parts) == 3 and parts[1] in sides.values() and parts[2] in DECISION_LABELS:
            return _compose(KIND_LABELS["pairing"],
                            _compose(sides.label_of(parts[1]), DECISION_LABELS[parts[2]]))
    if (kind == "fair" and rest.startswith("meeting_") and requests is not None
            and rest[len("meeting_"):] in requests.values()):
        return _compose(_l("Meeting request"), requests.label_of(rest[len("meeting_"):]))
    states = STATE_ACTIONS.get(kind)
    if states is not None and rest in states.values():
        return _compose(KIND_LABELS[kind], states.label_of(rest))
    return code


def is_labelled(code: str) -> bool:
    return action_label(code) != code


def labelled_codes() -> set[str]:
    """Every action code :func:`action_label` translates (fixed and composed)."""
    codes = set(ACTION_LABELS)
    codes.update(f"{kind}.{state}" for kind, enum_cls in STATE_ACTIONS.items() for state in enum_cls.values())
    if "meeting_request" in FAMILY_ENUMS:
        codes.update(f"fair.meeting_{state}" for state in FAMILY_ENUMS["meeting_request"].values())
    if "pairing_side" in FAMILY_ENUMS:
        codes.update(f"pairing.response.{side}.{decision}" for side in FAMILY_ENUMS["pairing_side"].values()
                     for decision in DECISION_LABELS)
    return codes


def _role_label(value: str) -> str | None:
    """'coordinator' or 'coordinator:qingdao' / 'coordinator:all' (admin.role_* events), else None."""
    role, sep, city = value.partition(":")
    if role not in Role.values():
        return None
    if not sep:
        return str(Role.label_of(role))
    if city in ("all", ""):
        city_label = _l("All hub cities")
    elif city in HubCity.values():
        city_label = HubCity.label_of(city)
    else:
        return None
    return _("%(role)s (%(city)s)", role=Role.label_of(role), city=city_label)


def state_label(value: str | None, target_type: str | None = None) -> str:
    """A from_state / to_state in the reader's language, read by the target's kind; else as it is."""
    if value is None or value == "":
        return ""
    states = TARGET_STATES.get(target_type or "")
    if states is not None and value in states.values():
        return str(states.label_of(value))
    if target_type in (None, "users"):
        role = _role_label(value)
        if role is not None:
            return role
    other = OTHER_STATES.get(value)
    if other is not None:
        return str(other)
    return value


def target_label(target_type: str | None, target_id: int | None) -> str:
    """'User #3', 'Need #1' in the reader's language; an unknown kind as it is."""
    if not target_type:
        return ""
    kind = TARGET_LABELS.get(target_type)
    kind = str(kind) if kind is not None else target_type
    return f"{kind} #{target_id}" if target_id is not None else kind


def actorless_label(action: str | None) -> str:
    """Who did an event without an actor: a visitor who is not signed in, or the system."""
    return _("Visitor (not signed in)") if action in VISITOR_ACTIONS else _("System / command line")


def category_choices(current: str | None = None) -> list[tuple[str, object]]:
    """Choices of the audit page's action filter; a prefix from an older link stays selectable."""
    choices: list[tuple[str, object]] = [("", _l("All actions"))] + list(CATEGORIES)
    if current and current not in {value for value, _label in choices}:
        choices.append((current, _("Starting with “%(prefix)s”", prefix=current)))
    return choices


@dataclass(frozen=True)
class Described:
    """An audit event as shown: labels in the reader's language, raw codes for tooltips."""

    action: str
    action_code: str
    target: str
    target_code: str
    from_state: str
    to_state: str
    change: str
    change_code: str
    actorless: str


def _change(frm: str, to: str) -> str:
    if not frm and not to:
        return ""
    return f"{frm} → {to}" if frm else f"→ {to}"


def describe(event) -> Described:
    """Everything the audit pages show of ``event`` (an AuditEvent), in the reader's language."""
    frm = state_label(event.from_state, event.target_type)
    to = state_label(event.to_state, event.target_type)
    target_code = (f"{event.target_type} #{event.target_id}" if event.target_id is not None
                   else event.target_type or "")
    return Described(
        action=action_label(event.action),
        action_code=event.action or "",
        target=target_label(event.target_type, event.target_id),
        target_code=target_code,
        from_state=frm,
        to_state=to,
        change=_change(frm, to),
        change_code=_change(event.from_state or "", event.to_state or ""),
        actorless=actorless_label(event.action),
    )

"""Account operations: registration, authentication, profile and organization changes.

Every function flushes but never commits: the caller (one request) owns the transaction and rolls it back
on a refusal. Business-rule refusals raise ``WorkflowError`` (or ``FieldError`` when the problem belongs
to one form field).
"""
from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from flask import current_app, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from ..core import audit
from ..core.enums import HubCity, Industry, Language, OrgKind, Role
from ..core.time import utcnow
from ..core.workflow import WorkflowError, lock_row
from ..extensions import db
from .models import ExpertProfile, Membership, MembershipRequest, Organization, User

PASSWORD_MIN = 12
PASSWORD_MAX = 128
LOCALES = ("zh_CN", "en")

#: a small deny-list of passwords that are long enough but still among the most guessed ones
COMMON_PASSWORDS = frozenset({
    "123456789012", "1234567890123", "12345678901234", "123456789123", "111111111111",
    "000000000000", "123123123123", "qwertyuiopas", "qwertyuiop123", "qwerty123456", "1q2w3e4r5t6y",
    "1qaz2wsx3edc", "zaq12wsxcde3", "q1w2e3r4t5y6", "asdfghjkl123", "password1234", "password12345",
    "password123456", "passwordpassword", "p@ssw0rd1234", "p@ssword1234", "iloveyou1234",
    "welcome12345", "welcome123456", "administrator", "admin1234567", "admin123456789", "letmein12345",
    "changeme1234", "abcdefghijkl", "abc123456789", "abcd12345678", "aa123456789", "aa1234567890",
    "woaini1314520", "woaini520520", "5201314520", "woainiwoaini", "iloveyouiloveyou",
    "matchmaker123", "matchmaker2024", "matchmaker2025", "kechuangzhongguo",
    "correcthorsebatterystaple", "trustno1trustno1", "football1234", "baseball1234", "sunshine1234",
    "princess1234", "dragon123456", "monkey123456", "master123456", "qazwsxedcrfv",
})


class FieldError(WorkflowError):
    """A refusal that belongs to one form field (shown next to it)."""

    def __init__(self, field: str, reason: str, status: int = 400):
        super().__init__(reason, status)
        self.field = field


# -- small helpers -------------------------------------------------------------------------------------

def normalize_email(email: str | None) -> str:
    # NUL: PostgreSQL refuses it even as a query parameter, and no address contains one
    return (email or "").replace("\x00", "").strip().lower()


def clean_text(value, max_len: int | None = None) -> str | None:
    """Strip whitespace and NUL (PostgreSQL refuses it); empty → None; refuse oversized values instead of
    truncating silently."""
    if value is None:
        return None
    value = str(value).replace("\x00", "").strip()
    if not value:
        return None
    if max_len is not None and len(value) > max_len:
        raise WorkflowError(_("A value is longer than %(n)d characters.", n=max_len), 400)
    return value


def safe_next(target: str | None) -> str | None:
    """Return ``target`` only if it is a local path on this site (no scheme, host or protocol-relative)."""
    if not target or len(target) > 2000:
        return None
    target = target.strip()
    if any(ord(c) < 32 for c in target) or "\\" in target:
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def email_taken(email: str, exclude_user_id: int | None = None) -> bool:
    query = db.select(User.id).where(func.lower(User.email) == normalize_email(email))
    if exclude_user_id is not None:
        query = query.where(User.id != exclude_user_id)
    return db.session.scalar(query.limit(1)) is not None


def find_organization(name: str | None) -> Organization | None:
    name = (name or "").strip()
    if not name:
        return None
    return db.session.scalar(db.select(Organization).where(Organization.name == name))


def password_problems(password: str | None, email: str | None = None) -> list[str]:
    """Why ``password`` is unacceptable (empty list: it is fine). Length-based, ASVS style: no composition
    rules, but refuse very common passwords, one repeated character and passwords built on the email."""
    password = password or ""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN:
        problems.append(_("Use at least %(n)d characters.", n=PASSWORD_MIN))
    if len(password) > PASSWORD_MAX:
        problems.append(_("Use at most %(n)d characters.", n=PASSWORD_MAX))
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or (password and len(set(password)) == 1):
        problems.append(_("This password is too common or too easy to guess."))
    local = normalize_email(email).split("@", 1)[0] if email else ""
    if len(local) >= 3 and local in lowered:
        problems.append(_("The password must not contain your email address."))
    return problems


def _check_password_policy(password: str, email: str, field: str = "password") -> None:
    problems = password_problems(password, email)
    if problems:
        raise FieldError(field, " ".join(problems))


# -- registration --------------------------------------------------------------------------------------

def register_user(data: dict) -> User:
    """Create an account from validated form data.

    ``data``: name, email, password, locale, account_type ('enterprise' | 'expert') and, for enterprise
    members, org_name, hub_city, region; for experts, title, affiliation, fields, languages, bio.
    Only the enterprise and expert roles can be chosen here; coordinators and admins are appointed.
    """
    account_type = data.get("account_type")
    if account_type not in (Role.ENTERPRISE.value, Role.EXPERT.value):
        raise FieldError("account_type", _("Choose an enterprise or an expert account."))
    email = normalize_email(data.get("email"))
    if email_taken(email):
        raise FieldError("email", _("An account with this email already exists. Try logging in."), 409)
    password = data.get("password") or ""
    _check_password_policy(password, email)
    locale = data.get("locale") if data.get("locale") in LOCALES else "zh_CN"
    name = clean_text(data.get("name"), 100)
    if not name:
        raise FieldError("name", _("Enter your name."))

    user = User(email=email, name=name, locale=locale)
    user.set_password(password)
    user.add_role(account_type)
    db.session.add(user)

    join_request = None
    if account_type == Role.ENTERPRISE:
        org, created = _enterprise_organization(data)
        if created:
            user.memberships.append(Membership(organization=org, is_manager=True))
        else:  # anyone can type a firm's name: its managers decide who acts and sees for it
            join_request = MembershipRequest(user=user, organization=org)
            db.session.add(join_request)
    else:
        user.expert_profile = ExpertProfile(fields=[], languages=[])
        apply_expert_profile(user.expert_profile, data)

    try:
        db.session.flush()
    except IntegrityError:  # a concurrent registration took the email or the organization name
        raise WorkflowError(_("This email or organization was registered at the same moment. Please try again."),
                            409) from None
    audit.record("auth.register", actor=user, target=user, to_state=account_type)
    if user.memberships:
        audit.record("org.create", actor=user, target=user.memberships[0].organization)
    if join_request is not None:
        _ask_managers(join_request)
    return user


def _ask_managers(join_request: MembershipRequest) -> None:
    from ..notifications.operations import notify
    org = join_request.organization
    db.session.flush()  # the request's id, for the audit entry
    audit.record("org.join_requested", actor=join_request.user, target=join_request)
    managers = [m.user for m in org.memberships if m.is_manager]
    notify(managers, "org.join_requested",
           _l("%(name)s asks to join %(org)s", name=join_request.user.name, org=org.name),
           _l("Approve or decline the request on the organization's page."),
           link=f"/organizations/{org.id}")


def pending_join_request(user: User) -> MembershipRequest | None:
    """The user's open request to join an organization, if any (named in the welcome at registration)."""
    return db.session.scalar(db.select(MembershipRequest).where(
        MembershipRequest.user_id == user.id, MembershipRequest.status == "pending"))


def open_join_requests(user: User) -> list[MembershipRequest]:
    """The user's requests to join organizations that did not make them members (pending or declined),
    newest first, for their profile page."""
    return list(db.session.scalars(db.select(MembershipRequest).where(
        MembershipRequest.user_id == user.id, MembershipRequest.status != "approved")
        .order_by(MembershipRequest.created_at.desc(), MembershipRequest.id.desc())))


def decide_join_request(join_request: MembershipRequest, actor: User, approve: bool) -> None:
    """A manager of the organization (or an admin) lets the requester in as a plain member, or declines."""
    org = join_request.organization
    if not org.can_edit(actor):
        raise WorkflowError(_("Only the organization's managers can decide who joins it."), 403)
    # two managers may answer at the same moment: the second must see the first's decision
    join_request = lock_row(MembershipRequest, join_request.id)
    if join_request is None or not join_request.is_pending:
        raise WorkflowError(_("This request has already been decided."), 409)
    join_request.status = "approved" if approve else "declined"
    join_request.decided_at = utcnow()
    join_request.decided_by = actor
    if approve and db.session.get(Membership, (join_request.user_id, org.id)) is None:
        db.session.add(Membership(user=join_request.user, organization=org, is_manager=False))
    audit.record("org.join_approved" if approve else "org.join_declined", actor=actor, target=join_request,
                 from_state="pending", to_state=join_request.status)
    from ..notifications.operations import notify
    notify([join_request.user], "org.join_decided",
           _l("You are now a member of %(org)s", org=org.name) if approve
           else _l("Your request to join %(org)s was declined", org=org.name),
           link=f"/organizations/{org.id}")
    db.session.flush()


def _enterprise_organization(data: dict) -> tuple[Organization, bool]:
    """The enterprise the new member belongs to: an existing one (exact name) or a new one they manage."""
    name = clean_text(data.get("org_name"), 200)
    if not name:
        raise FieldError("org_name", _("Enter your organization's name."))
    existing = find_organization(name)
    if existing is not None:
        if existing.kind != OrgKind.ENTERPRISE:
            raise FieldError("org_name", _("“%(name)s” is registered as a %(kind)s, not an enterprise.",
                                           name=name, kind=OrgKind.label_of(existing.kind)))
        return existing, False
    hub_city = data.get("hub_city")
    if hub_city not in HubCity.values():
        raise FieldError("hub_city", _("Choose the hub city of your organization."))
    org = Organization(name=name, kind=OrgKind.ENTERPRISE.value, hub_city=hub_city,
                       region=clean_text(data.get("region"), 100))
    db.session.add(org)
    return org, True


def apply_expert_profile(profile: ExpertProfile, data: dict) -> None:
    """Copy the expert fields (whitelisted, validated against the vocabularies)."""
    fields = list(dict.fromkeys(data.get("fields") or []))
    languages = list(dict.fromkeys(data.get("languages") or []))
    if any(f not in Industry.values() for f in fields):
        raise FieldError("fields", _("Unknown field of expertise."))
    if any(lang not in Language.values() for lang in languages):
        raise FieldError("languages", _("Unknown language."))
    if not fields:
        raise FieldError("fields", _("Choose at least one field of expertise."))
    profile.title = clean_text(data.get("title"), 100)
    profile.fields = fields
    profile.languages = languages
    profile.bio = clean_text(data.get("bio"), 4000)
    if "max_active_pairings" in data:  # registration leaves the default
        capacity = data["max_active_pairings"]
        if not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= 100:
            raise FieldError("max_active_pairings", _("Between 0 and 100."))
        profile.max_active_pairings = capacity
    affiliation = clean_text(data.get("affiliation"), 200)
    org = find_organization(affiliation)
    profile.affiliation = org
    profile.affiliation_id = org.id if org is not None else None
    profile.affiliation_text = None if org is not None else affiliation


# -- authentication ------------------------------------------------------------------------------------

_dummy_hasher = PasswordHasher()
_DUMMY_HASH = _dummy_hasher.hash("dummy password to spend the same time on unknown emails")


def authenticate(email: str, password: str) -> User:
    """The active user with these credentials, or ``WorkflowError`` with a message that does not reveal
    whether the email exists. Failures are audited (actor unknown)."""
    email = normalize_email(email)[:254]
    user = db.session.scalar(db.select(User).where(func.lower(User.email) == email)) if email else None
    if user is None:
        try:  # spend the same time as a real check, so response times do not reveal unknown emails
            _dummy_hasher.verify(_DUMMY_HASH, password or "x")
        except VerificationError:
            pass
        ok = False
    else:
        ok = user.check_password(password or "")
    if not ok:
        audit.record("auth.login_failed", comment=email)
        raise WorkflowError(_("Email or password is incorrect."), 401)
    if not user.active:
        audit.record("auth.login_failed", target=user, comment=email, to_state="inactive")
        raise WorkflowError(_("This account has been deactivated. Contact the programme office."), 403)
    return user


def record_login_throttled(email: str | None) -> None:
    """A login attempt refused by a rate limit (views: Flask-Limiter, RATELIMIT_LOGIN*) before any check."""
    audit.record("auth.login_throttled", comment=normalize_email(email)[:254] or None)
    db.session.flush()


def record_login(user: User) -> None:
    """A fresh server-side session token for every login (old sessions and remember-me cookies end)."""
    user.rotate_session_token()
    user.last_login_at = utcnow()
    audit.record("auth.login", actor=user, target=user)
    db.session.flush()


def record_logout(user: User) -> None:
    """Rotating the token invalidates the session cookie server-side, even if it was copied."""
    user.rotate_session_token()
    audit.record("auth.logout", actor=user, target=user)
    db.session.flush()


def change_password(user: User, current: str, new: str) -> None:
    if not user.check_password(current or ""):
        raise FieldError("current_password", _("Your current password is not correct."), 403)
    if current == new:
        raise FieldError("password", _("Choose a password different from the current one."))
    _check_password_policy(new, user.email)
    user.set_password(new)  # also rotates the session token: every other session ends
    audit.record("auth.password_change", actor=user, target=user)
    db.session.flush()


# -- password reset by email ---------------------------------------------------------------------------

RESET_MAX_AGE = 3600  # seconds a reset link works
_RESET_SALT = "matchmaker.password-reset"


def _reset_serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_RESET_SALT)


def _latest_reset_request(user: User) -> int:
    event = audit.AuditEvent
    return db.session.scalar(db.select(func.max(event.id)).where(
        event.action == "auth.password_reset_requested", event.target_type == User.__tablename__,
        event.target_id == user.id)) or 0


def _password_fingerprint(user: User) -> str:
    # part of the link: once the password changes (this link used, or any other change) or a newer link is
    # asked for (the newest request's audit entry), the link is dead
    return hashlib.sha256(f"{user.password_hash}|{_latest_reset_request(user)}".encode()).hexdigest()[:24]


def password_reset_token(user: User) -> str:
    return _reset_serializer().dumps({"uid": user.id, "fp": _password_fingerprint(user)})


def request_password_reset(email: str) -> User | None:
    """The active account with this email, with a reset link mailed to it after commit; None when there is
    no such account. The caller answers the same either way, so the form does not reveal who has one."""
    user = db.session.scalar(db.select(User).filter_by(email=normalize_email(email)))
    if user is None or not user.active:
        return None
    from ..notifications.mail import queue_mail
    audit.record("auth.password_reset_requested", actor=None, target=user)
    db.session.flush()  # the entry's id goes into the link: it supersedes every earlier link
    path = url_for("accounts.reset_password", token=password_reset_token(user))
    base = current_app.config.get("PUBLIC_URL") or ""
    if not base and current_app.config.get("ENV_NAME") != "production":
        base = request.host_url.rstrip("/")  # development convenience; production links use PUBLIC_URL only
    link = base + path
    subject = _("Choose a new Matchmaker password")
    body = _("Someone (hopefully you) asked to reset the password of this Matchmaker account. Open this link "
             "within one hour to choose a new one:\n\n%(link)s\n\nIf it was not you, ignore this email: your "
             "password stays as it is.", link=link)
    queue_mail(user.email, subject, body)  # in this transaction: sent once it commits
    return user


def user_for_reset_token(token: str) -> User:
    """The account a reset link is for; WorkflowError (400) when it is forged, expired, used or superseded."""
    try:
        data = _reset_serializer().loads(token, max_age=RESET_MAX_AGE)
    except SignatureExpired:
        raise WorkflowError(_("This link has expired. Ask for a new one."), 400) from None
    except BadSignature:
        raise WorkflowError(_("This link is not valid. Ask for a new one."), 400) from None
    uid = data.get("uid") if isinstance(data, dict) else None
    user = db.session.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active or data.get("fp") != _password_fingerprint(user):
        raise WorkflowError(_("This link has already been used or is no longer valid. Ask for a new one."), 400)
    return user


def reset_password(user: User, new: str) -> int:
    """Set the new password; every session of the account ends and its API tokens are revoked (whoever
    took the account over must not keep a way in). Returns how many tokens were revoked."""
    from .tokens import ApiToken
    _check_password_policy(new, user.email)
    user.set_password(new)  # also rotates the session token
    audit.record("auth.password_reset", actor=user, target=user)
    tokens = db.session.scalars(db.select(ApiToken).where(ApiToken.user_id == user.id,
                                                          ApiToken.revoked_at.is_(None))).all()
    for token in tokens:
        token.revoked_at = utcnow()
        audit.record("api_token.revoke", actor=user, target=token,
                     comment=f"{token.name} ({token.prefix}…), password reset")
    db.session.flush()
    return len(tokens)


# -- profile and organizations -------------------------------------------------------------------------

def update_profile(user: User, data: dict) -> None:
    """Name, locale and (for experts) the expert profile. Roles and memberships are not editable here."""
    name = clean_text(data.get("name"), 100)
    if not name:
        raise FieldError("name", _("Enter your name."))
    user.name = name
    if data.get("locale") in LOCALES:
        user.locale = data["locale"]
    if user.expert_profile is not None and "fields" in data:
        apply_expert_profile(user.expert_profile, data)
    audit.record("account.update", actor=user, target=user)
    db.session.flush()


def update_organization(org: Organization, user: User, data: dict) -> None:
    if not org.can_edit(user):
        raise WorkflowError(_("Only the organization's managers can edit it."), 403)
    name = clean_text(data.get("name"), 200)
    if not name:
        raise FieldError("name", _("Enter the organization's name."))
    clash = db.session.scalar(db.select(Organization.id).where(
        Organization.name == name, Organization.id != org.id))
    if clash is not None:
        raise FieldError("name", _("Another organization already uses this name."), 409) from None
    hub_city = data.get("hub_city") or None
    if hub_city is not None and hub_city not in HubCity.values():
        raise FieldError("hub_city", _("Unknown hub city."))
    org.name = name
    org.name_en = clean_text(data.get("name_en"), 200)
    org.hub_city = hub_city
    org.region = clean_text(data.get("region"), 100)
    org.description = clean_text(data.get("description"), 4000)
    audit.record("org.update", actor=user, target=org)
    try:
        db.session.flush()
    except IntegrityError:
        raise FieldError("name", _("Another organization already uses this name."), 409) from None

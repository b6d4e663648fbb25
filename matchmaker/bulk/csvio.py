"""CSV reading and writing for bulk onboarding.

Export: UTF-8 with BOM (Excel opens it correctly), one header row of stable column names (the model field
names), list fields joined with ``;``, and cells that a spreadsheet would run as a formula neutralised.

Import: every row is validated with the very forms the UI uses and created through the same service layer,
and only when no row has an error; otherwise nothing is written and a per-row report says what to fix.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.datastructures import MultiDict

from ..accounts.models import Membership, Organization, User
from ..core import audit
from ..core.enums import ListingStatus, OrgKind
from ..core.scope import coordinator_scope_of
from ..core.workflow import WorkflowError
from ..extensions import db
from ..listings import operations as ops
from ..listings.forms import CapabilityForm, NeedForm
from ..listings.models import Capability, Need

MAX_ROWS = 2000
LIST_SEP = ";"
#: a spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

KINDS = {"need": Need, "capability": Capability}
FORMS = {Need: NeedForm, Capability: CapabilityForm}
LIST_FIELDS = {"coop_modes"}


def columns(model) -> list[str]:
    """The stable column names of an export (and the columns an import understands)."""
    if model is Need:
        return ["id", "status", "organization", *ops.NEED_FIELDS]
    return ["id", "status", "organization", "expert_email", *ops.CAPABILITY_FIELDS]


#: columns an import may not miss: the organization plus every field the form requires
REQUIRED = {
    Need: ("organization", "title", "industry", "problems", "targets", "hub_city", "coop_modes", "contact_name"),
    Capability: ("organization", "title", "kind", "summary", "description", "field", "hub_city", "coop_modes"),
}
#: exported for information, never imported (status and ids are set by the workflow)
IGNORED_ON_IMPORT = {"id", "status"}


# --- export ---------------------------------------------------------------------------------------------

def neutralise(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would evaluate as a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def unneutralise(value: str) -> str:
    """Undo ``neutralise`` on import, so an export imports back to the same text."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES) else value


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = LIST_SEP.join(str(v) for v in value)
    elif isinstance(value, date):
        value = value.isoformat()
    return neutralise(str(value))


def listing_row(listing) -> list[str]:
    model = type(listing)
    values = []
    for name in columns(model):
        if name == "organization":
            value = listing.organization.name if listing.organization else ""
        elif name == "expert_email":
            value = listing.expert.user.email if listing.expert is not None else ""
        else:
            value = getattr(listing, name)
        values.append(cell(value))
    return values


def to_csv(header: list[str], rows) -> bytes:
    """UTF-8 with BOM, CRLF line ends (what Excel expects)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return buf.getvalue().encode("utf-8-sig")


def export_statement(model, status: str | None, user):
    """Listings of ``model`` for ``user``'s export: published by default, one status, or every status ("all").

    Same rule as the pages (``can_view``): published listings of every hub city, work in progress only
    where ``user`` moderates."""
    stmt = select(model).where(model.deleted_at.is_(None))
    if status != "all":
        stmt = stmt.where(model.status == (status or ListingStatus.PUBLISHED.value))
    stmt = stmt.where(or_(model.status == ListingStatus.PUBLISHED, coordinator_scope_of(user).where(model.hub_city)))
    return stmt.order_by(model.id)


# --- import ---------------------------------------------------------------------------------------------

@dataclass
class Problem:
    row: int | None  # spreadsheet row number (the header is row 1); None for file-level problems
    column: str
    message: str


@dataclass
class ImportResult:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    created: list = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def decode(data: bytes) -> str | None:
    """Text of an uploaded file: UTF-8 (with or without BOM), else GB18030 (Chinese Excel); None if neither."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            # GB18030 has its own byte-order mark (84 31 95 33), which decodes to U+FEFF: drop it too
            return data.decode(encoding).removeprefix("\ufeff")
        except UnicodeDecodeError:
            continue
    return None


def parse(data: bytes, model, result: ImportResult) -> list[tuple[int, dict[str, str]]]:
    """The data rows as (row number, column → value); file-level problems go to ``result.errors``."""
    if not data or not data.strip():
        result.errors.append(Problem(None, "", _("The file is empty.")))
        return []
    text = decode(data)
    if text is None:
        result.errors.append(Problem(None, "", _("The file is neither UTF-8 nor GB18030 text. Save it as "
                                                 "“CSV UTF-8” and try again.")))
        return []
    if "\x00" in text:
        result.errors.append(Problem(None, "", _("The file is not a CSV text file.")))
        return []
    try:
        raw = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        result.errors.append(Problem(None, "", _("The file is not valid CSV: %(error)s", error=str(exc))))
        return []
    header = [h.strip().lower() for h in (raw[0] if raw else [])]
    if not any(header):
        result.errors.append(Problem(None, "", _("The file is empty.")))
        return []
    missing = [c for c in REQUIRED[model] if c not in header]
    if missing:
        result.errors.append(Problem(None, ", ".join(missing),
                                     _("Required columns are missing: %(cols)s", cols=", ".join(missing))))
        return []
    known = set(columns(model))
    for name in header:
        if name and name not in known:
            result.warnings.append(Problem(1, name, _("Unknown column, ignored.")))
    rows = []
    for number, values in enumerate(raw[1:], start=2):
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) > len(header):
            result.errors.append(Problem(number, "", _("This row has more cells than the header.")))
            continue
        rows.append((number, {name: unneutralise(values[i]) if i < len(values) else ""
                              for i, name in enumerate(header) if name in known}))
    if not rows and not result.errors:
        result.errors.append(Problem(None, "", _("The file has a header but no data rows.")))
    if len(rows) > MAX_ROWS:
        result.errors.append(Problem(None, "", _("The file has %(n)d rows; at most %(max)d can be imported at "
                                                 "once. Split it into smaller files.", n=len(rows), max=MAX_ROWS)))
        return []
    result.rows = len(rows)
    return rows


def first_manager(org: Organization) -> User | None:
    """The longest-standing active manager of ``org`` (a deactivated account cannot own, nor submit, a listing)."""
    return db.session.execute(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == org.id, Membership.is_manager.is_(True), User.active.is_(True))
        .order_by(Membership.created_at, Membership.user_id).limit(1)).scalar_one_or_none()


def belongs_to(user: User, org: Organization) -> bool:
    """Is ``user`` a member of ``org``, or an expert affiliated with it?"""
    profile = user.expert_profile
    return org.id in user.organization_ids or (profile is not None and profile.affiliation_id == org.id)


def existing_listing(model, org: Organization, title: str):
    """A live (not deleted) listing of ``model`` of ``org`` with this exact title, if any."""
    return db.session.execute(
        select(model).where(model.organization_id == org.id, model.title == title, model.deleted_at.is_(None))
        .order_by(model.id).limit(1)).scalar_one_or_none()


def _formdata(model, values: dict[str, str], org_id: int) -> MultiDict:
    md = MultiDict()
    for name in FORMS[model].fields_saved:
        value = values.get(name, "")
        if name in LIST_FIELDS:
            for part in value.split(LIST_SEP):
                if part.strip():
                    md.add(name, part.strip())
        elif value != "":
            md.add(name, value)
    md.add("organization_id", str(org_id))
    return md


def run_import(model, data: bytes, importer, submit: bool) -> ImportResult:
    """Validate every row, then create them all in the current transaction, or none.

    Does not commit: on success the caller commits; on any error the session has been rolled back.
    """
    result = ImportResult()
    rows = parse(data, model, result)
    if not rows:  # a file-level problem: nothing to check row by row
        return result
    scope = coordinator_scope_of(importer)
    orgs: dict[str, Organization | None] = {}
    titles: dict[str, int] = {}
    plan = []
    for number, values in rows:
        row_ok = True
        name = values.get("organization", "").strip()
        if name not in orgs:
            orgs[name] = db.session.execute(select(Organization).filter_by(name=name)).scalar_one_or_none() \
                if name else None
        org = orgs[name]
        owner = None
        if not name:
            result.errors.append(Problem(number, "organization", _("Enter the organization's name.")))
            row_ok = False
        elif org is None:
            result.errors.append(Problem(number, "organization",
                                         _("No organization named “%(name)s” is registered.", name=name)))
            row_ok = False
        elif model is Need and org.kind != OrgKind.ENTERPRISE.value:
            result.errors.append(Problem(number, "organization",
                                         _("Technology needs are posted by enterprises; “%(name)s” is not one.",
                                           name=name)))
            row_ok = False
        elif not scope.covers(org.hub_city):
            result.errors.append(Problem(number, "organization",
                                         _("You may only import for organizations of your hub city.")))
            row_ok = False
        city = values.get("hub_city", "").strip()
        if city and not scope.covers(city):
            result.errors.append(Problem(number, "hub_city", _("You may only import listings of your hub city.")))
            row_ok = False
        email = values.get("expert_email", "").strip() if model is Capability else ""
        if email:
            owner = db.session.execute(select(User).where(func.lower(User.email) == email.lower())
                                       .limit(1)).scalar_one_or_none()
            if owner is None or owner.expert_profile is None:
                result.errors.append(Problem(number, "expert_email",
                                             _("No expert with this email address is registered.")))
                row_ok = False
            elif not owner.active:
                result.errors.append(Problem(number, "expert_email",
                                             _("This expert's account is deactivated; it cannot own a listing.")))
                row_ok = False
            elif org is not None and not belongs_to(owner, org):
                # the organization's members may edit its listings: never hand them an outsider's capability
                result.errors.append(Problem(number, "expert_email",
                                             _("This expert is neither a member of “%(name)s” nor affiliated "
                                               "with it.", name=name)))
                row_ok = False
        elif org is not None:
            owner = first_manager(org)
            if owner is None:
                result.errors.append(Problem(number, "organization",
                                             _("This organization has no active manager to own the listing.")))
                row_ok = False
        form = FORMS[model](formdata=_formdata(model, values, org.id if org else 0), meta={"csrf": False})
        form.organization_id.choices = [(org.id if org else 0, name)]
        if not form.validate():
            for column, messages in form.errors.items():
                for message in messages:
                    result.errors.append(Problem(number, column, str(message)))
            row_ok = False
        title = values.get("title", "").strip()
        if title and org is not None:
            # a file imported again (a retried upload) must not duplicate every listing
            existing = existing_listing(model, org, title)
            if existing is not None:
                result.errors.append(Problem(number, "title", _(
                    "“%(name)s” already has a listing titled “%(title)s” (#%(id)d); it is not imported again.",
                    name=name, title=existing.title, id=existing.id)))
                row_ok = False
        if title:
            if title in titles:
                result.warnings.append(Problem(number, "title", _("Same title as row %(row)d.", row=titles[title])))
            else:
                titles[title] = number
        if row_ok:
            plan.append((number, org, owner, form.listing_data()))
    if result.errors:
        return result
    number = None
    try:
        for number, org, owner, listing_data in plan:
            listing = ops.create_listing(model, owner, listing_data, organization=org)
            audit.record(f"{listing.kind_name}.bulk_import", actor=importer, target=listing,
                         comment=f"row {number}")
            if submit:
                ops.submit_listing(listing, owner)
            result.created.append(listing)
        db.session.flush()
    except (WorkflowError, IntegrityError, SQLAlchemyError) as exc:
        db.session.rollback()
        message = exc.reason if isinstance(exc, WorkflowError) else _("The database refused this row.")
        result.errors.append(Problem(number, "", str(message)))
        result.created = []
    return result


def report_csv(problems: list[Problem], warnings: list[Problem] = ()) -> bytes:
    rows = [[p.row or "", p.column, p.message, "error"] for p in problems]
    rows += [[p.row or "", p.column, p.message, "warning"] for p in warnings]
    return to_csv(["row", "column", "message", "severity"], [[cell(v) for v in r] for r in rows])

"""Bulk onboarding pages: CSV export of listings and all-or-nothing CSV import (coordinators and admins)."""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField
from wtforms.validators import DataRequired

from ..core.access import coordinator_required
from ..core.enums import ListingStatus
from ..core.transaction import commit
from ..extensions import db
from . import csvio

bp = Blueprint("bulk", __name__, url_prefix="/bulk")

EXPORTS = {"needs": csvio.Need, "capabilities": csvio.Capability}


class ImportForm(FlaskForm):
    kind = SelectField(_l("What the file contains"), choices=[("need", _l("Technology needs")),
                                                             ("capability", _l("Capabilities"))],
                       validators=[DataRequired()])
    then = SelectField(_l("Imported listings arrive as"),
                       choices=[("submit", _l("Submitted for moderation")), ("draft", _l("Drafts"))],
                       default="submit", validators=[DataRequired()])
    file = FileField(_l("CSV file (UTF-8 or GB18030, at most 2 MB, at most %(n)d rows)", n=csvio.MAX_ROWS),
                     validators=[FileRequired(_l("Choose a CSV file."))])


class ReportForm(FlaskForm):
    report = HiddenField()


def _csv_response(body: bytes, filename: str) -> Response:
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@bp.route("/<any(needs, capabilities):kind>.csv")
@coordinator_required
def export(kind):
    model = EXPORTS[kind]
    status = request.args.get("status") or None
    if status not in (None, "all", *ListingStatus.values()):
        abort(400, _("Unknown status."))
    listings = db.session.scalars(csvio.export_statement(model, status, current_user)).unique()
    body = csvio.to_csv(csvio.columns(model), (csvio.listing_row(li) for li in listings))
    return _csv_response(body, f"{kind}-{status or 'published'}.csv")


@bp.route("/import", methods=["GET", "POST"])
@coordinator_required
def import_csv():
    form = ImportForm()
    result = None
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            model = csvio.KINDS[form.kind.data]
            data = form.file.data.read(request.max_content_length or 2 * 1024 * 1024)
            result = csvio.run_import(model, data, current_user, submit=form.then.data == "submit")
            if result.ok:
                commit()
            else:
                db.session.rollback()
                status = 422
        else:
            status = 400
    report = ReportForm(formdata=None)
    if result is not None and (result.errors or result.warnings):
        report.report.data = json.dumps(
            [[p.row, p.column, p.message, "error"] for p in result.errors]
            + [[p.row, p.column, p.message, "warning"] for p in result.warnings], ensure_ascii=False)
    return render_template("bulk/import.html", form=form, result=result, report=report,
                           statuses=ListingStatus.choices(), max_rows=csvio.MAX_ROWS), status


@bp.route("/import/report.csv", methods=["POST"])
@coordinator_required
def report_csv():
    """The error report of the last import, sent back by the page as a CSV download."""
    form = ReportForm()
    try:
        items = json.loads(form.report.data or "")
        problems, warnings = [], []
        for row, column, message, severity in items[:10_000]:
            p = csvio.Problem(int(row) if row not in (None, "") else None, str(column), str(message))
            (warnings if severity == "warning" else problems).append(p)
    except (ValueError, TypeError, OverflowError):  # OverflowError: int(inf) from a "1e400" row number
        abort(400, _("The report is not valid."))
    if not form.validate_on_submit():
        abort(400, _("The report is not valid."))
    return _csv_response(csvio.report_csv(problems, warnings), "import-report.csv")

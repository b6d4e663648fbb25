"""Dashboards for coordinators and administrators; scoped coordinators see their hub city by default."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from ..core.access import coordinator_required
from ..core.enums import HubCity
from ..core.scope import coordinator_scope_of
from ..pairings.models import PairingState
from . import metrics

bp = Blueprint("dashboards", __name__, url_prefix="/dashboards", static_folder="static",
               static_url_path="/static")


def _selected_city() -> str | None:
    """?hub_city=<code> or ?hub_city=all; default: the coordinator's own city when scoped to exactly one."""
    asked = request.args.get("hub_city")
    if asked in HubCity.values():
        return asked
    if asked == "all":
        return None
    cities = coordinator_scope_of(current_user).cities  # empty for ALL
    return next(iter(cities)) if len(cities) == 1 else None


def _city_label(code) -> str:
    if code == metrics.OVERALL:
        return _("Overall")
    if code is None:
        return _("No hub city")
    return str(HubCity.label_of(code))


#: one colour per pairing state, the same on every chart; the chart library's default palette has seven
#: colours, so ten states repeated colours (greys for ends that went nowhere, greens for progress)
OUTCOME_COLOURS = {
    "suggested": "#adb5bd", "proposed": "#0dcaf0", "declined": "#6c757d", "pending_review": "#ffc107",
    "approved": "#0d6efd", "rejected": "#dc3545", "meeting_scheduled": "#6f42c1", "in_progress": "#20c997",
    "contract_signed": "#198754", "failed": "#343a40",
}


@bp.get("")
@coordinator_required
def index():
    city = _selected_city()
    rows, overall = metrics.compute(city)
    chart = {
        "labels": [_city_label(r.hub_city) for r in rows],
        "rates": [round(100 * r.docking_rate, 1) if r.docking_rate is not None else None for r in rows],
        "target": round(100 * metrics.TARGET_RATE),
        "posted": [r.needs_posted for r in rows],
        "docked": [r.needs_docked for r in rows],
        "outcomeLabels": [str(s.label) for s in PairingState],
        "outcomes": [overall.outcomes.get(s.value, 0) for s in PairingState],
        "outcomeColours": [OUTCOME_COLOURS[s.value] for s in PairingState],
        "text": {"rate": _("Docking rate (%)"), "target": _("Target rate"), "posted": _("Needs posted"),
                 "docked": _("Needs docked")},
    }
    return render_template("dashboards/index.html", rows=rows, overall=overall, city=city, chart=chart,
                           states=list(PairingState), city_label=_city_label, target=metrics.TARGET_RATE)


@bp.get("/export.csv")
@coordinator_required
def export_csv():
    city = _selected_city()
    rows, overall = metrics.compute(city)
    out = io.StringIO()
    writer = csv.writer(out)
    states = list(PairingState)
    writer.writerow(["hub_city", "hub_city_name", "needs_posted", "needs_docked", "docking_rate", "target_rate",
                     "median_days_to_first_approved_pairing", "contract_value_cny", "cross_region_dockings",
                     "vouchers_issued_cny", "vouchers_redeemed_cny"] + [f"pairings_{s.value}" for s in states])
    for r in rows + [overall]:
        writer.writerow([
            "all" if r.hub_city == metrics.OVERALL else (r.hub_city or ""), _city_label(r.hub_city),
            r.needs_posted, r.needs_docked,
            f"{r.docking_rate:.4f}" if r.docking_rate is not None else "", f"{metrics.TARGET_RATE:.2f}",
            f"{r.median_days_to_docking:.2f}" if r.median_days_to_docking is not None else "",
            f"{r.contract_value:.2f}", r.cross_region_dockings, f"{r.vouchers_issued:.2f}",
            f"{r.vouchers_redeemed:.2f}"] + [r.outcomes.get(s.value, 0) for s in states])
    name = f"dashboard-{city or 'all'}.csv"
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})

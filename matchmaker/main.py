"""Home page and language switch."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user

from .extensions import db, limiter

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """Landing page: programme figures and the newest published listings."""
    from .listings.models import Capability, Need
    from .listings.queries import visible_listings

    latest_needs = db.session.scalars(visible_listings(Need, current_user).order_by(
        Need.published_at.desc()).limit(6)).all()
    latest_caps = db.session.scalars(visible_listings(Capability, current_user).order_by(
        Capability.published_at.desc()).limit(6)).all()
    # what the visitor can browse (coordinators-only needs count for coordinators and their own firm)
    counts = {kind: db.session.scalar(db.select(db.func.count()).select_from(
                  visible_listings(model, current_user).subquery()))
              for kind, model in (("needs", Need), ("capabilities", Capability))}
    return render_template("main/index.html", latest_needs=latest_needs, latest_caps=latest_caps,
                           counts=counts)


@bp.post("/lang/<code>")
def set_language(code: str):
    """Switch the interface language; remembered in the session and on the account."""
    if code in ("zh_CN", "en"):
        session["lang"] = code
        if current_user.is_authenticated and current_user.locale != code:
            current_user.locale = code
            db.session.commit()
    target = request.form.get("next") or url_for("main.index")
    if urlsplit(target).netloc or not target.startswith("/"):
        target = url_for("main.index")
    return redirect(target)


# -- probes for load balancers and process managers: no login, no rate limit, no page cache, no session -----

@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Liveness: the process answers (200 always, whatever the engine or database)."""
    return jsonify(status="ok")


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Readiness: 200 once this process can rank (matching engine loaded and caught up with the stored
    vectors); 503 with the reason otherwise (still loading, failed, catching up, database unreachable)."""
    from .matching_service import readiness
    try:
        ready, details = readiness()
    except Exception as exc:  # the database is down: not ready, said plainly
        db.session.rollback()
        return jsonify(status="unavailable", reason="database unreachable", error=type(exc).__name__), 503
    return jsonify(status="ready" if ready else "unavailable", **details), 200 if ready else 503

"""Placeholder until the listing pages land."""
from flask import Blueprint

bp = Blueprint("listings", __name__)


@bp.get("/needs")
def browse_needs():
    return "needs"


@bp.get("/capabilities")
def browse_capabilities():
    return "caps"


@bp.get("/my")
def my_listings():
    return "my"

"""Placeholder until the moderation pages land."""
from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.get("/")
def queue():
    return "queue"

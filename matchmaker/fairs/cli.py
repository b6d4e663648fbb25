"""``matchmaker fairs-expire``: unanswered meeting requests expire at their fair's registration deadline."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..core.cluster_lock import periodic


@click.command("fairs-expire")
@with_appcontext
@periodic("fairs-expire")  # once per cluster, whichever node's timer fires
def fairs_expire() -> None:
    """Expire meeting requests left unanswered after the registration deadline (run e.g. hourly)."""
    from ..extensions import db
    from .operations import expire_unanswered
    count = expire_unanswered()
    db.session.commit()
    click.echo(f"expired: {count}")

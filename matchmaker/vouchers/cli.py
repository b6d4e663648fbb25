"""``matchmaker vouchers-expire``: vouchers past their expiry date close, their balance leaving the ledger."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..core.cluster_lock import periodic


@click.command("vouchers-expire")
@with_appcontext
@periodic("vouchers-expire")  # once per cluster, whichever node's timer fires
def vouchers_expire() -> None:
    """Expire active vouchers past their expiry date (run daily, after midnight Beijing time)."""
    from ..extensions import db
    from .operations import expire_due
    count = expire_due()
    db.session.commit()
    click.echo(f"expired: {count}")

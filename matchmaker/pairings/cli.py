"""``matchmaker digest``: one notification (and email, after commit) per expert with the needs suggested for them
since their last digest. Run it weekly (cron / systemd timer)."""
from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ..core.cluster_lock import periodic
from ..core.enums import ListingStatus
from ..core.time import utcnow
from ..extensions import db

#: first digest of an expert: needs of the last week
FIRST_WINDOW = timedelta(days=7)
MAX_ITEMS = 10


def _new_needs_for(user, since: datetime) -> list:
    """Needs published since ``since`` that are suggested for the expert: the engine's ranking when it is on,
    otherwise needs in the expert's fields. Both apply the same hard filters: visible to the expert, and
    ``matchable_needs`` (not their own or their colleagues' organizations or needs, not their affiliation,
    not an organization they declared a conflict of interest with)."""
    from .. import matching_service as ms
    from ..listings.models import Need
    from ..listings.queries import visible_listings
    from ..suggestions.queries import needs_for_user
    from .eligibility import matchable_needs
    if ms.get_engine() is not None:
        suggestions, _texts = needs_for_user(user, k=MAX_ITEMS, published_since=since)
        return [s.listing for s in suggestions]
    fields = list(user.expert_profile.fields or [])
    if not fields:
        return []
    stmt = visible_listings(Need, user).where(Need.status == ListingStatus.PUBLISHED, Need.published_at > since,
                                             Need.industry.in_(fields), matchable_needs(user))
    return list(db.session.scalars(stmt.order_by(Need.published_at.desc()).limit(MAX_ITEMS)))


def send_digests(now: datetime | None = None) -> dict:
    """Create the digests in the current transaction (the caller commits; emails go out after commit)."""
    from ..accounts.models import ExpertProfile, User
    from ..notifications.operations import notify
    now = now or utcnow()
    sent = skipped = 0
    profiles = db.session.scalars(select(ExpertProfile).join(User).where(User.active.is_(True))
                                  .order_by(ExpertProfile.id)).all()
    for profile in profiles:
        user = profile.user
        since = profile.last_digest_at or (now - FIRST_WINDOW)
        needs = _new_needs_for(user, since)
        if not needs:
            skipped += 1
            continue
        with force_locale(user.locale or "zh_CN"):
            subject = _("%(num)d new technology needs suggested for you", num=len(needs))
            body = "\n".join(f"• {n.title} — /needs/{n.id}" for n in needs)
        notify([user], "digest.needs", subject, body, link="/suggestions", email=True)
        profile.last_digest_at = now
        sent += 1
    db.session.flush()
    return {"sent": sent, "skipped": skipped}


@click.command("digest")
@with_appcontext
@periodic("digest")  # once per cluster, whichever node's timer fires
def digest_command() -> None:
    """Send each expert a digest of the needs suggested for them since their last digest."""
    report = send_digests()
    db.session.commit()
    click.echo(f"digests sent: {report['sent']}, experts with nothing new: {report['skipped']}")

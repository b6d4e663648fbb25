"""Write the URL mix of the load test, one path a line: browse, listing and match pages in turn.

Run inside the app (``python scripts/load/urls.py OUT``) so it sees the same database as the server.
Browse pages cover the first pages, keyword searches and facets; listing pages cover every published
public need and a spread of capabilities; match pages cover ``match_needs`` needs (a cold match page costs
seconds of CPU for its evidence, so the load test warms these first). Shuffled with a fixed seed.
Usage: ``python scripts/load/urls.py OUT [MATCH_NEEDS]``; OUT.match gets the distinct match URLs.
"""
from __future__ import annotations

import random
import sys

from sqlalchemy import select


def url_mix(match_needs: int, rounds: int = 600, seed: int = 7) -> list[str]:
    from matchmaker.core.enums import HubCity, Industry, ListingStatus, Visibility
    from matchmaker.extensions import db
    from matchmaker.listings.models import Capability, Need

    rng = random.Random(seed)
    need_ids = db.session.scalars(select(Need.id).where(
        Need.status == ListingStatus.PUBLISHED, Need.deleted_at.is_(None),
        Need.visibility == Visibility.PUBLIC)).all()
    cap_ids = db.session.scalars(select(Capability.id).where(
        Capability.status == ListingStatus.PUBLISHED, Capability.deleted_at.is_(None))).all()
    if not need_ids or not cap_ids:
        raise SystemExit("no published listings: seed and publish first")
    browse = ([f"/needs?page={p}" for p in range(1, 6)] + [f"/capabilities?page={p}" for p in range(1, 6)]
              + [f"/needs?industry={i}" for i in Industry.values()]
              + [f"/capabilities?hub_city={h}" for h in HubCity.values()]
              + ["/needs?q=%E9%BD%BF%E8%BD%AE", "/capabilities?q=battery", "/needs?q=%E6%A3%80%E6%B5%8B&page=2"])
    needs, caps = list(need_ids), list(cap_ids)
    rng.shuffle(needs)
    rng.shuffle(caps)
    urls = []
    for i in range(rounds):
        listing = f"/needs/{needs[i % len(needs)]}" if i % 2 else f"/capabilities/{caps[i % len(caps)]}"
        urls += [rng.choice(browse), listing, f"/needs/{needs[i % min(match_needs, len(needs))]}/matches"]
    return urls


if __name__ == "__main__":
    from matchmaker import create_app
    with create_app().app_context():
        lines = url_mix(int(sys.argv[2]) if len(sys.argv) > 2 else 6)
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    with open(sys.argv[1] + ".match", "w", encoding="utf-8") as out:
        out.write("\n".join(sorted({u for u in lines if u.endswith("/matches")})) + "\n")
    print(f"{len(lines)} URLs written to {sys.argv[1]}")

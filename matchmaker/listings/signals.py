"""What listings announce to the domains built on them (see ``matchmaker.core.signals``)."""
from __future__ import annotations

from ..core.signals import signals

#: a listing was closed or deleted: ``listing_withdrawn.send(listing, actor=user)``; pairings end those not
#: docked yet, challenges cancel a need's live calls for bids
listing_withdrawn = signals.signal("listing-withdrawn", doc="A need or capability was closed or deleted.")

"""What the index jobs announce to the domains built on them (see ``matchmaker.core.signals``)."""
from __future__ import annotations

from ..core.signals import signals

#: index jobs brought these listings in line with the database and committed:
#: ``listings_indexed.send(None, keys={(kind, listing_id), ...})``. Receivers write through ``db.session``;
#: the worker commits it after them (the listings' own change is long committed by then).
listings_indexed = signals.signal("listings-indexed", doc="Index jobs updated the index for these listings.")

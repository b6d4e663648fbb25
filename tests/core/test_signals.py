"""Cross-domain reactions through signals (core.signals): the order they run in and who is connected."""
from __future__ import annotations

import weakref

from matchmaker.core.signals import OrderedNamespace
from matchmaker.listings.signals import listing_withdrawn
from matchmaker.matching_service import engine_loaded


def test_receivers_run_in_the_order_they_were_connected():
    """Do a signal's receivers run in connection order (blinker's own leaves it undefined), also after one is
    disconnected and for receivers of one sender only?"""
    signal = OrderedNamespace().signal("test")
    ran = []
    def receiver_number(i):
        return lambda sender, **kw: ran.append(i)

    receivers = [receiver_number(i) for i in range(40)]
    for receiver in receivers:
        signal.connect(receiver, weak=False)
    signal.send(object())
    assert ran == list(range(40))
    signal.disconnect(receivers[7])
    signal.connect(lambda sender, **kw: ran.append("mine"), sender="mine", weak=False)
    ran.clear()
    signal.send("mine")
    assert ran == [i for i in range(40) if i != 7] + ["mine"]


def test_a_withdrawn_listing_reaches_pairings_then_challenges(app):
    """Once the app is built, is a withdrawn listing handed to pairings and then challenges (the order of
    their audit entries before the signal), each held strongly so that no garbage collection drops it?"""
    names = [f"{r.__module__}.{r.__name__}" for r in listing_withdrawn.receivers_for(object())]
    assert names == ["matchmaker.pairings.operations.end_open_pairings",
                     "matchmaker.challenges.operations._on_listing_withdrawn"]
    assert not any(isinstance(r, weakref.ref) for r in listing_withdrawn.receivers.values())


def test_the_index_worker_starts_with_the_engine(app):
    """Is the index worker's thread start connected to engine_loaded once the app is built?"""
    names = [f"{r.__module__}.{r.__name__}" for r in engine_loaded.receivers_for(app)]
    assert names == ["matchmaker.indexing.worker.start_thread_if_serving"]

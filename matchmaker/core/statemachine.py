"""One small state machine for the workflows (listings, pairings, fairs, challenges).

Each domain keeps its own ``TRANSITIONS`` table and wording; this only checks a move against the table and
makes it the same way everywhere: set the state, stamp what the domain stamps, write the audit entry.
"""
from __future__ import annotations

from collections.abc import Callable

from . import audit
from .time import utcnow
from .workflow import WorkflowError


class StateMachine:
    """``transitions`` maps a state to the states it may go to.

    ``refusal`` is the domain's message for an illegal move (a lazy string with ``%(frm)s`` and ``%(to)s``
    and whatever ``params(obj)`` adds); ``labels`` is the state enum (``label_of``); ``noun`` the audit
    action's prefix (``"pairing"`` → ``pairing.approved``), or a function of the object; ``touch`` names a
    timestamp column set on every move.
    """

    def __init__(self, transitions: dict[str, set[str]], *, labels, refusal, noun: str | Callable[[object], str],
                 field: str = "status", touch: str | None = None,
                 params: Callable[[object], dict] | None = None):
        self.transitions = transitions
        self.labels, self.refusal, self.noun = labels, refusal, noun
        self.field, self.touch, self.params = field, touch, params

    def allows(self, frm: str, to: str) -> bool:
        return to in self.transitions.get(frm, set())

    def refuse(self, obj, to: str, status: int = 409) -> WorkflowError:
        """The domain's refusal of moving ``obj`` to ``to`` (to raise)."""
        values = dict(self.params(obj)) if self.params else {}
        values.update(frm=self.labels.label_of(getattr(obj, self.field)), to=self.labels.label_of(to))
        return WorkflowError(str(self.refusal) % values, status)

    def check(self, obj, to: str) -> None:
        """Refuse an illegal move before anything on ``obj`` is touched (no half-written row)."""
        if not self.allows(getattr(obj, self.field), to):
            raise self.refuse(obj, to)

    def move(self, obj, to: str, actor, comment: str | None = None, *, action: str | None = None,
             checked: bool = True) -> str:
        """Put ``obj`` in state ``to`` and audit it (``<noun>.<to>`` unless ``action`` says otherwise);
        returns the state it left. ``checked=False`` is for a move the table leaves out on purpose."""
        frm = getattr(obj, self.field)
        if checked:
            self.check(obj, to)
        setattr(obj, self.field, to)
        if self.touch:
            setattr(obj, self.touch, utcnow())
        noun = self.noun(obj) if callable(self.noun) else self.noun
        audit.record(action or f"{noun}.{to}", actor=actor, target=obj, from_state=frm, to_state=to,
                     comment=comment)
        return frm

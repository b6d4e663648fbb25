"""The one owner of a request's transaction.

Operations flush and raise, they never commit: a refused operation raises ``WorkflowError``, a lost race
surfaces as ``StaleDataError`` / ``IntegrityError`` in an operation's flush or at the commit. A view commits
once with ``commit()`` and wraps its work in ``transaction``, which rolls back and answers — the page says
how, as data: where to go back to, which refusals abort, and the domain's wording of a lost race::

    @bp.post("/pairings/<int:pairing_id>/respond")
    @transaction("pairings.detail", lost=PAIRING_RACE)
    def respond(pairing_id):
        ops.respond(...)
        commit()
        flash(...)
        return redirect(...)

A page that shows its form again uses it as a context manager and looks at the outcome afterwards::

    with transaction(lost=CHALLENGE_RACE) as tx:
        ops.publish_challenge(...)
        commit()
    if tx.failed:
        return render_template(...), tx.status
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Self

from flask import abort, current_app, flash, redirect, request, url_for
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import db
from .workflow import RACE_ERRORS, WorkflowError

#: ``lost_back=STAY``: after a lost race the page shows itself again (``tx.failed``), wherever refusals go
STAY = "stay"


def commit() -> None:
    """Commit the request's transaction; a lost race raised here is answered like one in the operation."""
    db.session.commit()


@dataclass(frozen=True)
class LostRace:
    """A domain's answer to a lost race.

    ``stale``: another request changed the row first (version check); None when the page itself explains.
    ``duplicate``: the same thing was written twice at one moment (unique constraint); defaults to ``stale``.
    ``abort``: answer 409 with the message; otherwise flash it and go back (or let the page show itself).
    """

    stale: object = None
    duplicate: object = None
    abort: bool = False
    category: str = "warning"
    duplicate_category: str | None = None
    log_duplicate: bool = False  # an unexpected constraint is worth a look in the log
    errors: tuple = RACE_ERRORS

    def answer(self, exc: Exception) -> tuple[str | None, str]:
        """(message, flash category) for ``exc``; str() translates a lazy message in the request's locale."""
        if isinstance(exc, StaleDataError) or self.duplicate is None:
            message, category = self.stale, self.category
        else:
            message, category = self.duplicate, self.duplicate_category or self.category
            if self.log_duplicate:
                current_app.logger.warning("integrity error on %s", request.path, exc_info=exc)
        return (None if message is None else str(message)), category


class transaction:  # used like a function: @transaction(...) / with transaction(...)
    """Roll back and answer a refused operation or a lost race.

    ``back``: where a refusal (and, unless ``lost_back`` says otherwise, a lost race) goes back to with its
    message flashed: an endpoint (its arguments are taken from the view's), a URL, or None. With None, a
    decorated view aborts with the refusal's status and reason; a ``with`` block flashes the reason (or puts
    it next to its ``form`` field) and lets the page show itself: ``tx.failed``, ``tx.status``.
    ``lost_back``: where a lost race goes instead (``STAY``: nowhere, the page shows itself).
    ``abort_on``: refusal statuses answered by aborting with the reason wherever ``back`` points.
    ``lost``: the domain's ``LostRace``; without it a lost race is not handled here (500, or an outer
    ``transaction``). The rollback always happens before the answer.
    """

    def __init__(self, back: str | None = None, *, lost: LostRace | None = None, lost_back: str | None = None,
                 abort_on: tuple[int, ...] = (401, 403, 404), form=None, code: int = 303):
        self.back, self.lost, self.lost_back = back, lost, lost_back
        self.abort_on, self.form, self.code = abort_on, form, code
        self.refusal: WorkflowError | None = None
        self.race: Exception | None = None
        self._decorating = False

    @property
    def failed(self) -> bool:
        return self.refusal is not None or self.race is not None

    @property
    def status(self) -> int | None:
        """The refusal's status, 409 for a lost race, None when nothing failed."""
        if self.refusal is not None:
            return self.refusal.status
        return 409 if self.race is not None else None

    def __call__(self, view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            tx = transaction(self.back, lost=self.lost, lost_back=self.lost_back, abort_on=self.abort_on,
                             form=self.form, code=self.code)
            tx._decorating = True  # a view must answer: what a `with` block leaves to the page aborts here
            with tx:
                return view(*args, **kwargs)
        return wrapper

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, WorkflowError):
            db.session.rollback()
            self._refused(exc)
            return True
        if self.lost is not None and isinstance(exc, self.lost.errors):
            db.session.rollback()
            self._lost(exc)
            return True
        return False

    def _refused(self, exc: WorkflowError) -> None:
        if exc.status in self.abort_on or (self.back is None and self._decorating):
            abort(exc.status if 400 <= exc.status < 500 else 409, exc.reason)
        field = getattr(exc, "field", None)
        if self.form is not None and field and field in self.form:
            self.form[field].errors = list(self.form[field].errors or []) + [exc.reason]
        else:
            flash(exc.reason, "error")
        self.refusal = exc
        self._go(self.back)

    def _lost(self, exc: Exception) -> None:
        message, category = self.lost.answer(exc)
        back = self.back if self.lost_back is None else None if self.lost_back == STAY else self.lost_back
        if self.lost.abort or (back is None and self._decorating):
            abort(409, message)
        if message:
            flash(message, category)
        self.race = exc
        self._go(back)

    def _go(self, back: str | None) -> None:
        if back is None:
            return  # the page shows itself again
        if not back.startswith("/"):  # an endpoint: it takes its arguments from the view's
            rule = next(current_app.url_map.iter_rules(back))
            back = url_for(back, **{k: v for k, v in (request.view_args or {}).items() if k in rule.arguments})
        abort(redirect(back, code=self.code))

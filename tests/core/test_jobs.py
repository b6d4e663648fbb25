"""Does claiming rows of a job table (core/jobs.py) give each row to exactly one of several concurrent runners,
on committed data and separate connections, as runners on different machines would have?"""
from __future__ import annotations

import threading
import uuid

from sqlalchemy import create_engine, delete, insert
from sqlalchemy.orm import Session

from matchmaker.core import jobs
from matchmaker.core.time import utcnow
from matchmaker.notifications.models import MailMessage


def test_concurrent_runners_never_claim_the_same_row(app):
    """With 60 due rows and three runners claiming 2 at a time in parallel until nothing is left, is every
    row claimed exactly once?"""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    engines = [create_engine(url) for _ in range(3)]
    tag = uuid.uuid4().hex[:12]
    now = utcnow()
    with engines[0].begin() as conn:
        conn.execute(insert(MailMessage), [
            {"message_id": f"<{tag}.{i}@test>", "to_addr": f"{i}@example.test", "subject": "s", "body": "b",
             "created_at": now, "available_at": now, "attempts": 0} for i in range(60)])
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def runner(name: str, engine) -> None:
        try:
            start.wait(30)
            mine = claimed.setdefault(name, [])
            with Session(engine) as session:
                while rows := jobs.claim(session, MailMessage, "sent_at", name, 2, stale_after=600,
                                         max_attempts=5):
                    mine.extend(row[0] for row in rows)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(f"runner-{i}", engine)) for i, engine in enumerate(engines)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        every = [row_id for ids in claimed.values() for row_id in ids]
        assert len(every) == 60 and len(set(every)) == 60
        assert sum(1 for ids in claimed.values() if ids) >= 2, claimed  # they did run side by side
    finally:
        with engines[0].begin() as conn:
            conn.execute(delete(MailMessage).where(MailMessage.message_id.like(f"<{tag}.%")))
        for engine in engines:
            engine.dispose()

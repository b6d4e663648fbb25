"""One writer of index files at a time, across processes (flock on a file in the index folder) and across
threads of one process (re-entrant, so a holder may call code that takes it again)."""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".write.lock"


class _DirLock:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_locks: dict[str, _DirLock] = {}
_locks_guard = threading.Lock()


@contextmanager
def index_write_lock(index_dir: str | os.PathLike):
    directory = Path(index_dir).resolve()
    with _locks_guard:
        lock = _locks.setdefault(str(directory), _DirLock(directory))
    with lock.thread_lock:
        if lock.depth == 0:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while another process writes
            except BaseException:
                os.close(fd)
                raise
            lock.fd = fd
        lock.depth += 1
        try:
            yield
        finally:
            lock.depth -= 1
            if lock.depth == 0:
                fd, lock.fd = lock.fd, None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

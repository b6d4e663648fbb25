"""Do periodic jobs run once per cluster: a PostgreSQL advisory lock (SQLite: a file lock) that a second,
concurrent runner cannot take, so it skips, whichever node it is on?"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine

from matchmaker.core.cluster_lock import lock_key, once_per_cluster


@pytest.fixture
def engines(app):
    """Two engines on the test database, as two nodes would have (each its own connections)."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    pair = [create_engine(url), create_engine(url)]
    yield pair
    for engine in pair:
        engine.dispose()


class Holder:
    """A runner on another thread that takes the lock and keeps it until told to let go."""

    def __init__(self, name: str, bind) -> None:
        self.name, self.bind = name, bind
        self.taken, self.release = threading.Event(), threading.Event()
        self.held: bool | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with once_per_cluster(self.name, self.bind) as held:
            self.held = held
            self.taken.set()
            self.release.wait(30)

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(30)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(30)


def test_two_concurrent_runners_one_runs_and_the_other_skips(engines):
    """With two runners on two connections at the same time, does exactly one get the lock, and can the
    second take it once the first has finished?"""
    first, second = engines
    with Holder("digest", first) as holder:
        assert holder.held is True
        with once_per_cluster("digest", second) as held:
            assert held is False
    with once_per_cluster("digest", second) as held:
        assert held is True
    with once_per_cluster("digest", first) as held:  # and it was released again
        assert held is True


def test_different_jobs_do_not_block_each_other(engines):
    """Does a running digest leave the expiry jobs free to run (one lock per job, not one for all)?"""
    first, second = engines
    with Holder("digest", first):
        with once_per_cluster("fairs-expire", second) as held:
            assert held is True


@pytest.mark.parametrize("command, ran", [("digest", "digests sent: 0"), ("fairs-expire", "expired: 0"),
                                          ("vouchers-expire", "expired: 0")])
def test_the_periodic_commands_skip_while_another_node_runs_them(app, engines, command, ran):
    """Does each periodic command (digest, fairs-expire, vouchers-expire) skip, successfully, while another
    runner holds its lock, and run once it is free?"""
    from matchmaker.cli import main
    cmd = main.commands[command]
    runner = app.test_cli_runner()
    with Holder(command, engines[0]):
        result = runner.invoke(cmd)
        assert result.exit_code == 0, result.output
        assert "skipped, another node is running it" in result.output and ran not in result.output
    result = runner.invoke(cmd)
    assert result.exit_code == 0 and ran in result.output, result.output


@pytest.mark.nodb
def test_the_lock_keys_are_distinct_bigints():
    """Does each job get its own key, within PostgreSQL's bigint range?"""
    keys = [lock_key(n) for n in ("digest", "fairs-expire", "vouchers-expire")]
    assert len(set(keys)) == 3 and all(-(2 ** 63) <= key < 2 ** 63 for key in keys)


@pytest.mark.nodb
def test_the_lock_key_does_not_depend_on_the_process():
    """Does a fresh Python process compute the same key (advisory locks only work if every node agrees)?"""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "from matchmaker.core.cluster_lock import lock_key; "
                          "print(lock_key('digest'))"], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])})
    assert int(out.stdout.strip()) == lock_key("digest")

"""Does `matchmaker backup` / `matchmaker restore` carry every row across, refuse bad archives, and write
nothing when it refuses?"""
from __future__ import annotations

import zipfile

import pytest
from sqlalchemy import func, select, text

from matchmaker.backup import (NOT_BACKED_UP, BackupError, backup_command, create_backup, restore_backup,
                               restore_command)
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.notifications.operations import notify
from matchmaker.pairings import operations as pairing_ops

pytestmark = pytest.mark.slow


def _dump(app) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order, as Python values."""
    with app.app_context(), db.engine.connect() as conn:
        out = {}
        for table in db.metadata.sorted_tables:
            if table.name in NOT_BACKED_UP:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
        return out


def _seed(make):
    """A few rows in every important table, through the factories and the service layer."""
    firm = make.org(kind="enterprise", name="重庆甲公司")
    institute = make.org(kind="institute", name="某研究院", hub_city="chengdu")
    owner = make.user(Role.ENTERPRISE, org=firm)
    expert = make.user(Role.EXPERT, org=institute)
    coordinator = make.user(Role.COORDINATOR, hub_city="chongqing")
    need = make.need(owner, deadline=None)
    make.need(owner, status="draft", title="草稿需求：氢能储运", industry="new_energy")
    cap = make.capability(expert)
    make.capability(expert, status="closed", title="已关闭的成果")
    pairing_ops.propose_pairing(need, cap, by=coordinator)
    notify([owner, expert], "test", "测试通知 ✓", "正文", "/")
    db.session.commit()


def test_round_trip_restores_every_row(fresh_app, make, tmp_path, db_session):
    """Backed up and restored into a fresh empty database, is every row of every table identical, and do
    new rows get fresh ids afterwards?"""
    source = fresh_app("src")
    with source.app_context():
        _seed(make)
        archive = tmp_path / "backup.zip"
        result = source.test_cli_runner().invoke(backup_command, [str(archive)])
        assert result.exit_code == 0, result.output
    before = _dump(source)
    assert sum(bool(rows) for rows in before.values()) >= 8, "seed too thin to prove anything"
    assert not list(tmp_path.glob(".backup.zip.*")), "temp file left behind"

    target = fresh_app("dst")
    with target.app_context():  # (the test already holds the suite's app context: push the target's)
        result = target.test_cli_runner().invoke(restore_command, [str(archive)])
    assert result.exit_code == 0, result.output
    assert "reindex" in result.output  # tells the operator the index rebuilds from the database
    assert _dump(target) == before
    with target.app_context(), db.engine.connect() as conn:  # pages cached before the restore are stale
        assert conn.execute(text("SELECT n FROM data_version")).scalar() == 1

    with target.app_context():  # sequences were reset: a new row does not collide with restored ids
        make.org(name="恢复后新机构")
        from matchmaker.accounts.models import Organization
        assert db.session.scalar(select(func.count()).select_from(Organization)) == len(before["organizations"]) + 1


def test_corrupt_archive_and_non_empty_target_are_refused(fresh_app, make, tmp_path, db_session):
    """Is a corrupted archive (bad checksum) refused with a clear error, and a non-empty database refused
    without --force, both writing nothing; and does --force replace the rows?"""
    source = fresh_app("src")
    archive, corrupt = tmp_path / "ok.zip", tmp_path / "corrupt.zip"
    with source.app_context():
        _seed(make)
        create_backup(archive)
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(corrupt, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "tables/needs.jsonl":
                data = data.replace("低温".encode(), "高温".encode(), 1)
            zout.writestr(item, data)

    target = fresh_app("dst")
    with target.app_context():
        result = target.test_cli_runner().invoke(restore_command, [str(corrupt)])
    assert result.exit_code != 0
    assert "checksum mismatch" in result.output and "needs.jsonl" in result.output
    assert all(not rows for rows in _dump(target).values()), "a refused restore wrote rows"

    # Non-empty target: the source itself.
    before = _dump(source)
    with source.app_context():
        result = source.test_cli_runner().invoke(restore_command, [str(archive)])
    assert result.exit_code != 0 and "not empty" in result.output
    assert _dump(source) == before

    with source.app_context():  # --force deletes first (reverse dependency order), then loads
        make.org(name="备份之后的机构")
        restore_backup(archive, force=True)
    assert _dump(source) == before

    with target.app_context(), pytest.raises(BackupError, match="unreadable archive"):
        restore_backup(tmp_path / "missing.zip")


def _rewrite(archive, out, manifest_edit=None, file_edits=None):
    """A copy of ``archive`` with table files edited (checksums and row counts kept consistent) and the
    manifest then edited by ``manifest_edit(manifest)``."""
    import hashlib
    import json
    file_edits = file_edits or {}
    with zipfile.ZipFile(archive) as zin:
        manifest = json.loads(zin.read("manifest.json"))
        files = {e["file"]: zin.read(e["file"]) for e in manifest["tables"]}
    for entry in manifest["tables"]:
        if entry["file"] in file_edits:
            data = files[entry["file"]] = file_edits[entry["file"]](files[entry["file"]])
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["rows"] = sum(1 for line in data.splitlines() if line.strip())
    if manifest_edit:
        manifest_edit(manifest)
    with zipfile.ZipFile(out, "w") as zout:
        for name, data in files.items():
            zout.writestr(name, data)
        zout.writestr("manifest.json", json.dumps(manifest))
    return out


def test_archive_missing_or_repeating_a_table_is_refused(fresh_app, make, tmp_path, db_session):
    """Is an archive whose manifest leaves out a table (or lists one twice) refused, naming the table, even
    with --force, the database untouched?"""
    source = fresh_app("src")
    archive = tmp_path / "ok.zip"
    with source.app_context():
        _seed(make)
        create_backup(archive)
    before = _dump(source)
    assert before["notifications"], "the left-out table must hold rows for the test to prove anything"

    def drop_notifications(manifest):
        manifest["tables"] = [e for e in manifest["tables"] if e["name"] != "notifications"]

    def repeat_organizations(manifest):
        manifest["tables"].append(next(e for e in manifest["tables"] if e["name"] == "organizations"))

    missing = _rewrite(archive, tmp_path / "missing.zip", drop_notifications)
    repeated = _rewrite(archive, tmp_path / "repeated.zip", repeat_organizations)
    with source.app_context():
        result = source.test_cli_runner().invoke(restore_command, [str(missing), "--force"])
        assert result.exit_code != 0 and "lacks tables" in result.output and "notifications" in result.output
        assert "Restored" not in result.output
        with pytest.raises(BackupError, match="more than once: organizations"):
            restore_backup(repeated, force=True)
    assert _dump(source) == before

    target = fresh_app("dst")  # an empty database is refused as well: it would come back without the table
    with target.app_context(), pytest.raises(BackupError, match="notifications"):
        restore_backup(missing)
    assert all(not rows for rows in _dump(target).values())


def test_rows_breaking_a_constraint_are_a_backup_error_and_rolled_back(fresh_app, make, tmp_path, db_session):
    """Do archive rows that break a constraint of the schema (a repeated primary key) give a BackupError
    naming the table file rather than a traceback, with everything rolled back?"""
    source = fresh_app("src")
    archive = tmp_path / "ok.zip"
    with source.app_context():
        _seed(make)
        create_backup(archive)
    before = _dump(source)

    def repeat_first_row(data: bytes) -> bytes:
        return data + data.splitlines(keepends=True)[0]

    broken = _rewrite(archive, tmp_path / "broken.zip", file_edits={"tables/users.jsonl": repeat_first_row})
    with source.app_context():
        result = source.test_cli_runner().invoke(restore_command, [str(broken), "--force"])
        assert result.exit_code != 0 and "users.jsonl" in result.output and "constraint" in result.output
        assert isinstance(result.exception, SystemExit), result.exception  # a ClickException, not a crash
    assert _dump(source) == before

    target = fresh_app("dst")
    with target.app_context(), pytest.raises(BackupError, match="users.jsonl"):
        restore_backup(broken)
    assert all(not rows for rows in _dump(target).values()), "a refused restore wrote rows"


def _checksums(app) -> dict[str, str]:
    """A sha256 per table over every row's columns as the database's own text, so that values Python sees as
    equal but the database holds differently (SQL NULL and a JSON null) count as different."""
    import hashlib
    from sqlalchemy import Text, cast
    with app.app_context(), db.engine.connect() as conn:
        sums = {}
        for table in db.metadata.sorted_tables:
            if table.name in NOT_BACKED_UP:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            digest = hashlib.sha256()
            for row in conn.execute(select(*[cast(c, Text) for c in table.columns]).order_by(*order)):
                digest.update(repr(tuple(row)).encode())
            sums[table.name] = digest.hexdigest()
        return sums


def test_sql_null_and_json_null_round_trip_exactly(fresh_app, make, tmp_path, db_session):
    """Regression (2026-12-07): a JSON column's SQL NULL came back as JSON null (fairs.schedule_report); is the
    checksum of every table, read as the database's text, identical after backup and restore?"""
    source = fresh_app("src")
    with source.app_context():
        _seed(make)
        from matchmaker.pairings.models import Pairing
        firm = make.org(kind="enterprise", name="重庆乙公司")
        need = make.need(make.user(Role.ENTERPRISE, org=firm))
        second = pairing_ops.propose_pairing(need, make.capability(make.user(Role.EXPERT)),
                                             by=make.user(Role.COORDINATOR, hub_city="chongqing"))
        db.session.commit()
        first_id = db.session.scalar(select(func.min(Pairing.id)))
        json_null = "'null'::json" if db.engine.dialect.name == "postgresql" else "'null'"
        db.session.execute(text("UPDATE pairings SET match_evidence = NULL WHERE id = :id"), {"id": first_id})
        db.session.execute(text(f"UPDATE pairings SET match_evidence = {json_null} WHERE id = :id"),
                           {"id": second.id})
        db.session.commit()
        archive = tmp_path / "backup.zip"
        create_backup(archive)
    before = _checksums(source)
    with source.app_context(), db.engine.connect() as conn:  # the two kinds of null really are both there
        kinds = conn.execute(text("SELECT match_evidence IS NULL FROM pairings ORDER BY id")).scalars().all()
        assert True in kinds and False in kinds

    target = fresh_app("dst")
    with target.app_context():
        restore_backup(archive)
    assert _checksums(target) == before


def test_flipped_bytes_are_an_unreadable_archive_not_a_traceback(fresh_app, make, tmp_path, db_session):
    """Regression (2026-12-07): flipping bytes inside a compressed table file made `restore --force` print a
    raw zlib.error traceback; is every such archive refused with the clean message and nothing written?"""
    source = fresh_app("src")
    archive = tmp_path / "ok.zip"
    with source.app_context():
        _seed(make)
        create_backup(archive)
    before = _dump(source)
    raw = archive.read_bytes()
    with zipfile.ZipFile(archive) as zf:
        member = zf.getinfo("tables/needs.jsonl")
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    for position in range(start, start + member.compress_size, max(1, member.compress_size // 12)):
        damaged = tmp_path / f"flipped-{position}.zip"
        damaged.write_bytes(raw[:position] + bytes([raw[position] ^ 0xFF]) + raw[position + 1:])
        with source.app_context():
            result = source.test_cli_runner().invoke(restore_command, [str(damaged), "--force"])
        assert result.exit_code == 1, (position, result.output, result.exception)
        assert "Traceback" not in result.output
        assert "unreadable archive" in result.output or "checksum mismatch" in result.output, result.output
    assert _dump(source) == before

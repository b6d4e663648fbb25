"""`matchmaker backup` / `matchmaker restore`: a portable archive of the SQL database (the source of truth).

The archive is a zip holding one JSON Lines file per table (``tables/<name>.jsonl``, every table of
``db.metadata`` in dependency order) and ``manifest.json`` (format, Alembic revision, created_at UTC, row
counts and the sha256 of every table file). Values are portable: datetimes as ISO 8601 UTC, dates ISO,
Decimals as strings, JSON columns as their JSON text (so SQL NULL, written null, and a JSON ``null``, written
"null", stay apart), binary as base64. It works between SQLite and PostgreSQL. Archives of format 1 (JSON
columns as JSON values) still restore.

The match index is not in the archive, neither its FAISS files nor the listing vectors stored in the database:
they are derived data, rebuilt from the listings (``matchmaker reindex`` embeds them again at once).
"""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import (JSON, Date, DateTime, LargeBinary, Numeric, Text, TypeDecorator, cast, func, inspect, null,
                        select, text, update)
from sqlalchemy.exc import IntegrityError

from .extensions import db

FORMAT = 2
READABLE_FORMATS = {1, 2}
MANIFEST = "manifest.json"


class BackupError(Exception):
    """The archive cannot be restored here; the message says why. Nothing was written."""


# -- values --------------------------------------------------------------------------------------

def _encode(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # UTCDateTime stores UTC; a naive value is UTC by convention
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):  # a Python Enum
        return value.value
    return value


def _base_type(column):
    t = column.type
    return t.impl_instance if isinstance(t, TypeDecorator) else t


def _is_json(column) -> bool:
    return isinstance(_base_type(column), JSON)


def _decode(column, value, fmt: int = FORMAT):
    if value is None:
        return None
    t = _base_type(column)
    if isinstance(t, JSON):
        if fmt == 1:
            return value
        parsed = json.loads(value)
        return JSON.NULL if parsed is None else parsed  # JSON.NULL: a JSON null, not SQL NULL
    if isinstance(t, DateTime):
        parsed = dt.datetime.fromisoformat(value)
        if not getattr(t, "timezone", False) and parsed.tzinfo is not None:  # a naive column holds UTC
            return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return parsed
    if isinstance(t, Date):
        return dt.date.fromisoformat(value)
    if isinstance(t, Numeric):
        return decimal.Decimal(value) if getattr(t, "asdecimal", True) else float(value)
    if isinstance(t, LargeBinary):
        return base64.b64decode(value)
    return value


# -- helpers --------------------------------------------------------------------------------------

#: coordination state, not records: a restore moves the data versions on instead (stale cached pages go); the
#: vector sequence only ever grows, so nodes see every row written after the restore as new
COORDINATION = {"data_version", "table_versions", "vector_sequence"}
#: derived from the listings (the match index's vectors): not archived; a restore deletes them, and
#: `matchmaker reindex` (or each node at start) embeds the restored listings again
DERIVED = {"listing_vectors", "vector_models"}
NOT_BACKED_UP = COORDINATION | DERIVED


def _tables():
    return [t for t in db.metadata.sorted_tables if t.name not in NOT_BACKED_UP]  # parents before children


def current_revision(connection) -> str | None:
    """The Alembic revision the database is stamped with (None when it has no alembic_version table)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory
    from flask import current_app
    migrate = current_app.extensions.get("migrate")
    if migrate is None:
        return None
    return ScriptDirectory.from_config(migrate.migrate.get_config()).get_current_head()


def _order(table):
    return list(table.primary_key.columns) or list(table.columns)


# -- backup -----------------------------------------------------------------------------------------

def create_backup(path: str | os.PathLike) -> dict:
    """Write the archive at ``path`` atomically (temp file in the same directory + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "app": "matchmaker",
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "dialect": db.engine.dialect.name, "tables": []}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # One read transaction: the archive is a consistent snapshot (PostgreSQL needs REPEATABLE READ for
        # that; SQLite's read transaction already is one).
        options = {"isolation_level": "REPEATABLE READ"} if db.engine.dialect.name == "postgresql" else {}
        with db.engine.connect().execution_options(**options) as conn, conn.begin():
            manifest["alembic_revision"] = current_revision(conn)
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for table in _tables():
                    buf = io.BytesIO()
                    count = 0
                    # JSON columns as the database's text: reading them as values makes SQL NULL and JSON
                    # null the same None
                    columns = [cast(c, Text).label(c.name) if _is_json(c) else c for c in table.columns]
                    for row in conn.execute(select(*columns).order_by(*_order(table))).mappings():
                        line = {c.name: _encode(row[c.name]) for c in table.columns}
                        buf.write(json.dumps(line, ensure_ascii=False, sort_keys=True).encode())
                        buf.write(b"\n")
                        count += 1
                    data = buf.getvalue()
                    fname = f"tables/{table.name}.jsonl"
                    zf.writestr(fname, data)
                    manifest["tables"].append({"name": table.name, "file": fname, "rows": count,
                                               "sha256": hashlib.sha256(data).hexdigest()})
                zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return manifest


# -- restore ----------------------------------------------------------------------------------------

def read_archive(path: str | os.PathLike) -> tuple[dict, dict[str, bytes]]:
    """The manifest and verified table files; raises BackupError on anything unexpected."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read(MANIFEST))
            files = {}
            for entry in manifest["tables"]:
                data = zf.read(entry["file"])
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise BackupError(f"checksum mismatch in {entry['file']}: the archive is corrupt")
                files[entry["name"]] = data
    except BackupError:
        raise
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # zlib.error: flipped bytes inside a compressed member fail decompression before the checksum
        raise BackupError(f"unreadable archive {path}: {exc}") from exc
    if manifest.get("format") not in READABLE_FORMATS:
        raise BackupError(f"archive format {manifest.get('format')!r}, expected one of {sorted(READABLE_FORMATS)}")
    return manifest, files


def restore_backup(path: str | os.PathLike, force: bool = False) -> dict[str, int]:
    """Load the archive into this database in one transaction; returns rows per table.

    Refuses (BackupError, nothing written) when the archive is corrupt, when its tables are not exactly this
    schema's, when its Alembic revision is not this database's revision and the code's head, when the
    database holds rows and ``force`` is off, or when its rows break a constraint.
    """
    manifest, files = read_archive(path)
    tables = {t.name: t for t in _tables()}
    _check_table_set(manifest, tables)
    head = head_revision()
    counts: dict[str, int] = {}
    with db.engine.begin() as conn:  # all or nothing
        target = current_revision(conn)
        if target != head:
            raise BackupError(f"the database is at revision {target}, not the code's head {head}: "
                              "run `matchmaker init-db` first")
        if manifest.get("alembic_revision") != head:
            raise BackupError(f"the archive was made at revision {manifest.get('alembic_revision')}, "
                              f"this code is at {head}: restore with the matching version of the code")
        non_empty = [t.name for t in _tables()
                     if conn.execute(select(func.count()).select_from(t)).scalar()]
        if non_empty and not force:
            raise BackupError("the database is not empty (" + ", ".join(non_empty) + "): restore only into an "
                              "empty database, or pass --force to delete every row first")
        for table in reversed(_tables()):
            conn.execute(table.delete())
        for table in reversed(db.metadata.sorted_tables):
            if table.name in DERIVED:
                conn.execute(table.delete())
        entries = {e["name"]: e for e in manifest["tables"]}
        fmt = manifest["format"]
        for table in _tables():  # parents before children, whatever the manifest's order
            entry = entries[table.name]
            rows = []
            sql_nulls: dict[str, list[dict]] = {}  # JSON column -> primary keys of rows holding SQL NULL
            for lineno, line in enumerate(files[entry["name"]].splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    row = {c.name: _decode(c, raw[c.name], fmt) for c in table.columns if c.name in raw}
                    rows.append(row)
                    if fmt > 1:
                        for c in table.columns:
                            if _is_json(c) and c.name in raw and raw[c.name] is None:
                                sql_nulls.setdefault(c.name, []).append(
                                    {k.name: row[k.name] for k in table.primary_key.columns})
                except (ValueError, TypeError, AttributeError) as exc:
                    raise BackupError(f"{entry['file']} line {lineno}: unreadable row ({exc})") from exc
            if len(rows) != entry["rows"]:
                raise BackupError(f"{entry['file']}: {len(rows)} rows, manifest says {entry['rows']}")
            try:
                for s in range(0, len(rows), 1000):
                    conn.execute(table.insert(), rows[s:s + 1000])
                # an insert writes None into a JSON column as JSON null; SQL NULL is set afterwards
                for name, keys in sql_nulls.items():
                    _set_sql_null(conn, table, name, keys)
            except IntegrityError as exc:  # raising rolls the whole restore back
                raise BackupError(f"{entry['file']}: rows break a constraint of this schema "
                                  f"({exc.orig}): the archive is inconsistent") from exc
            counts[table.name] = len(rows)
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)
        from .core import data_version
        data_version.bump(conn)
    return counts


def _set_sql_null(conn, table, column: str, keys: list[dict]) -> None:
    # columns with an onupdate (updated_at) are set to themselves, so the restore keeps their values
    values = {column: null(), **{c.name: c for c in table.columns if c.onupdate is not None and c.name != column}}
    pk = list(table.primary_key.columns)
    if len(pk) == 1:
        ids = [key[pk[0].name] for key in keys]
        for s in range(0, len(ids), 1000):
            conn.execute(update(table).where(pk[0].in_(ids[s:s + 1000])).values(values))
        return
    for key in keys:
        conn.execute(update(table).where(*[table.c[k] == v for k, v in key.items()]).values(values))


def _check_table_set(manifest: dict, tables: dict) -> None:
    """The archive must hold every table of this schema exactly once: a table left out would be emptied by
    --force and never refilled."""
    names = [e["name"] for e in manifest["tables"]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BackupError(f"archive lists tables more than once: {', '.join(repeated)}")
    unknown = [n for n in names if n not in tables]
    if unknown:
        raise BackupError(f"archive has tables this schema does not know: {', '.join(unknown)}")
    missing = [n for n in tables if n not in names]
    if missing:
        raise BackupError(f"archive lacks tables this schema has: {', '.join(missing)}: "
                          "it is incomplete or from another version of the code")


def _reset_sequences(conn) -> None:
    """New rows get ids after the restored ones (explicit ids do not advance PostgreSQL sequences)."""
    for table in _tables():
        for col in table.primary_key.columns:
            seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                               {"t": table.name, "c": col.name}).scalar()
            if seq:
                top = f'(SELECT MAX("{col.name}") FROM "{table.name}")'
                conn.execute(text(f"SELECT setval(:s, COALESCE({top}, 0) + 1, false)"), {"s": seq})


# -- CLI ----------------------------------------------------------------------------------------------

@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def backup_command(path: str) -> None:
    """Write a portable archive of the database (zip of JSON Lines + manifest) to PATH."""
    manifest = create_backup(path)
    total = sum(t["rows"] for t in manifest["tables"])
    click.echo(f"Backed up {total} rows in {len(manifest['tables'])} tables "
               f"(revision {manifest['alembic_revision']}) to {path}.")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Delete every row of the database first.")
@with_appcontext
def restore_command(path: str, force: bool) -> None:
    """Restore the archive at PATH into this (empty) database, in one transaction."""
    try:
        counts = restore_backup(path, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored {sum(counts.values())} rows in {len(counts)} tables.")
    click.echo("The matching index is not part of the backup: it rebuilds from the database on first use; "
               "run `matchmaker reindex` to rebuild it now.")

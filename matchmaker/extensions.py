"""Flask extensions, created unbound and initialised in the app factory."""
from flask import current_app
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# Limits are declared on the views; storage (RATELIMIT_STORAGE_URI) and on/off (MATCHMAKER_RATE_LIMITS) are config.
# The client address is the proxy-corrected one (ProxyFix in core.security).
limiter = Limiter(key_func=get_remote_address)


@limiter.request_filter
def _rate_limits_off() -> bool:
    return not current_app.config.get("MATCHMAKER_RATE_LIMITS", True)


def configured_limit(key: str):
    """A limit string read from the config at request time (e.g. "10 per minute"), for ``limiter.limit``."""
    return lambda: current_app.config[key]


def ping_idle_connections(engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that sat idle: a pooled connection unused for more
    than ``idle_seconds`` is pinged when checked out, and replaced if the server dropped it (a restart, an
    idle timeout). SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one extra round trip on every
    request, ~15 % of a signed-in request's CPU under load (docs/benchmarks.md, Web load); a connection
    handed from request to request within seconds does not need it. ``idle_seconds`` <= 0 pings always."""
    import time

    from sqlalchemy import event, exc

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle_seconds:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.DisconnectionError() from error  # the pool reconnects and retries
            raise


#: execution option of an engine whose sessions run beside the request's transaction (see configure_sqlite)
SEPARATE_TRANSACTION = "matchmaker_separate_transaction"


def configure_sqlite(engine) -> None:
    """Make SQLite honour foreign keys and real transactions (SAVEPOINT-safe), as PostgreSQL does."""
    from sqlalchemy import event

    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        # WAL: a long read (the index worker ranking every open need after a publish) no longer holds off a
        # page's commit until "database is locked"; readers and the one writer proceed side by side
        if cursor.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A request that may write takes the write lock when its transaction starts. Begun as a read, a
        # transaction that writes later cannot wait for the lock (SQLite reports the deadlock at once as
        # "database is locked") whenever another connection, e.g. the index worker, is committing.
        # A session of its own opened during a request (the match index reading stored vectors) is not the
        # request's transaction: taking the write lock there would wait on the request's own connection.
        separate = conn.get_execution_options().get(SEPARATE_TRANSACTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _request_may_write() and not separate else "BEGIN")


def read_only_request(view):
    """Mark a POST view that never writes (e.g. it runs the model for seconds): on SQLite it must not hold
    the write lock meanwhile."""
    view.read_only_request = True
    return view


def _request_may_write() -> bool:
    from flask import has_request_context, request
    if not has_request_context() or request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    return not getattr(current_app.view_functions.get(request.endpoint), "read_only_request", False)

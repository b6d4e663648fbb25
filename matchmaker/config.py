"""Configuration read from the environment, with embedded defaults (SQLite, bundled model)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: str) -> dict:
    """Build the config mapping; tests override it with ``create_app(test_config)``."""
    instance = Path(instance_path)
    env = os.environ.get("MATCHMAKER_ENV", "development")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'matchmaker.sqlite'}"
    # Heroku-style URLs name the old driver; psycopg 3 is what we ship.
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://"):]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    return {
        "ENV_NAME": env,
        # production must set SECRET_KEY (checked at start); development keeps a random one in instance/
        "SECRET_KEY": os.environ.get("SECRET_KEY") or ("" if env == "production" else _dev_secret(instance)),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # a pooled connection idle longer than this is pinged before use (extensions.ping_idle_connections);
        # not SQLAlchemy's pool_pre_ping, which pings before every request
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "DB_PING_IDLE_SECONDS": float(os.environ.get("MATCHMAKER_DB_PING_IDLE_SECONDS", "10")),
        "MATCHMAKER_INDEX_DIR": os.environ.get("MATCHMAKER_INDEX_DIR", str(REPO_ROOT / "embeddings")),
        "MATCHMAKER_MATCHING": _bool("MATCHMAKER_MATCHING", True),
        # results below the confidence floor are never presented as matches (matching/confidence.py); the
        # confidence is calibrated on realistic pools, so only a handful-of-listings test index switches it off
        "MATCHMAKER_MATCH_FLOOR": _bool("MATCHMAKER_MATCH_FLOOR", True),
        # who embeds published listings: "thread" in each web process, "external" = `matchmaker worker`
        "MATCHMAKER_INDEX_WORKER": os.environ.get("MATCHMAKER_INDEX_WORKER", "thread").strip().lower(),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "LANGUAGES": ["zh_CN", "en"],
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": 3600 * 8,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_DURATION": 7 * 24 * 3600,  # Flask-Login's default is a year
        "PAGE_SIZE": 20,
        # mail (notifications/mail.py): a durable outbox table sent by a runner; SMTP when MAIL_SERVER is set,
        # else .eml files in MAIL_OUTBOX_DIR (default instance/outbox); links in mail start with PUBLIC_URL
        # (never with the request's Host header: reset-link poisoning)
        "MAIL_SERVER": os.environ.get("MATCHMAKER_MAIL_SERVER", ""),
        "MAIL_PORT": int(os.environ.get("MATCHMAKER_MAIL_PORT", "465" if _bool("MATCHMAKER_MAIL_USE_SSL", False)
                                        else "25")),
        "MAIL_USE_TLS": _bool("MATCHMAKER_MAIL_USE_TLS", False),  # STARTTLS after connecting
        "MAIL_USE_SSL": _bool("MATCHMAKER_MAIL_USE_SSL", False),  # implicit TLS from the first byte
        "MAIL_USERNAME": os.environ.get("MATCHMAKER_MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MATCHMAKER_MAIL_PASSWORD", ""),
        "MAIL_CA_FILE": os.environ.get("MATCHMAKER_MAIL_CA_FILE", ""),  # a private CA; default: the system's
        "MAIL_TIMEOUT": float(os.environ.get("MATCHMAKER_MAIL_TIMEOUT", "20")),
        # who sends queued mail: inline / thread / external (`matchmaker mail-worker`); empty = as index jobs
        "MAIL_WORKER": os.environ.get("MATCHMAKER_MAIL_WORKER", "").strip().lower(),
        "MAIL_FROM": os.environ.get("MATCHMAKER_MAIL_FROM", "matchmaker@localhost"),
        "MAIL_OUTBOX_DIR": os.environ.get("MATCHMAKER_MAIL_OUTBOX_DIR", ""),
        "PUBLIC_URL": os.environ.get("MATCHMAKER_PUBLIC_URL", "").rstrip("/"),
        # rendered-page cache for repeat views (core.pagecache): on/off, entry lifetime, memory per process
        "PAGE_CACHE": _bool("MATCHMAKER_PAGE_CACHE", True),
        "PAGE_CACHE_SECONDS": float(os.environ.get("MATCHMAKER_PAGE_CACHE_SECONDS", "300")),
        "PAGE_CACHE_MB": float(os.environ.get("MATCHMAKER_PAGE_CACHE_MB", "64")),
        # caches shared by every viewer (core.sharedcache): Redis when REDIS_URL is set, else in-process
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "CACHE_PREFIX": os.environ.get("MATCHMAKER_CACHE_PREFIX", "matchmaker:"),
        "SHARED_CACHE": _bool("MATCHMAKER_SHARED_CACHE", True),
        "SHARED_CACHE_SECONDS": int(os.environ.get("MATCHMAKER_SHARED_CACHE_SECONDS", "3600")),
        "SHARED_CACHE_ENTRIES": int(os.environ.get("MATCHMAKER_SHARED_CACHE_ENTRIES", "4096")),
        # after index jobs, rank up to this many open needs ahead of their first view (suggestions.cache)
        "RANKING_WARM": int(os.environ.get("MATCHMAKER_RANKING_WARM", "50")),
        # logs: one JSON object per line (production default) or readable text, each with the request id
        "LOG_FORMAT": os.environ.get("MATCHMAKER_LOG_FORMAT", "json" if env == "production" else "text"),
        "LOG_LEVEL": os.environ.get("MATCHMAKER_LOG_LEVEL", "INFO").upper(),
        # one log line per request (method, path, status, endpoint, duration); default on with JSON logs
        "ACCESS_LOG": _bool("MATCHMAKER_ACCESS_LOG", os.environ.get(
            "MATCHMAKER_LOG_FORMAT", "json" if env == "production" else "text") == "json"),
        # /metrics: with a token, any address that sends it as a bearer token; without, loopback only
        "METRICS_TOKEN": os.environ.get("MATCHMAKER_METRICS_TOKEN", ""),
        # behind nginx or another proxy: how many hops of X-Forwarded-* to trust (0 = none)
        "PROXY_FIX_HOPS": int(os.environ.get("MATCHMAKER_PROXY_HOPS", "1" if env == "production" else "0")),
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "SESSION_COOKIE_NAME": "__Host-session" if env == "production" else "session",
        # server-side session timeouts, checked on every request (accounts.sessions)
        "SESSION_IDLE_MINUTES": float(os.environ.get("MATCHMAKER_SESSION_IDLE_MINUTES", "30")),
        "SESSION_MAX_HOURS": float(os.environ.get("MATCHMAKER_SESSION_MAX_HOURS", "12")),
        # Flask-Limiter: memory:// counts per process; several gunicorn workers need a shared redis:// store
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # a storage outage must not turn logins into errors: fall back to per-process counting and log it
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_LOGIN": "10 per minute",  # login submissions per client address
        "RATELIMIT_LOGIN_FAILURES": "10 per 15 minutes",  # wrong passwords per submitted email
        "RATELIMIT_REGISTER": "10 per hour",  # registrations per client address
        "RATELIMIT_PASSWORD_RESET": "5 per hour",  # reset emails asked for, per client address and per email
        "RATELIMIT_API_TOKENS": "20 per hour",  # API tokens created per user
    }


def _dev_secret(instance: Path) -> str:
    """A per-installation random key kept in the instance folder, so development sessions survive restarts."""
    instance.mkdir(parents=True, exist_ok=True)
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()

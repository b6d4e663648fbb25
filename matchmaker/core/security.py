"""HTTP hardening: security headers on every response, proxy awareness, and refusing weak production config."""
from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix

from ..extensions import limiter

#: scripts and styles come only from our own static files; no inline code, no framing, no plugins
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
MIN_SECRET_KEY_LENGTH = 32


class InsecureConfig(RuntimeError):
    """The app refuses to start in production with a configuration that would be unsafe."""


def check_production_config(config) -> None:
    if config.get("ENV_NAME") != "production":
        return
    key = config.get("SECRET_KEY") or ""
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 10:
        raise InsecureConfig(f"SECRET_KEY must be set to a random string of at least {MIN_SECRET_KEY_LENGTH} "
                             "characters in production (e.g. python -c 'import secrets; "
                             "print(secrets.token_urlsafe(48))').")
    if config.get("DEBUG"):
        raise InsecureConfig("DEBUG must be off in production.")


def register(app) -> None:
    check_production_config(app.config)
    if app.config.get("PROXY_FIX_HOPS"):
        hops = int(app.config["PROXY_FIX_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # Rate limits are on unless configured off; the test suite turns them on only where it tests them.
    app.config.setdefault("MATCHMAKER_RATE_LIMITS", not app.testing)
    limiter.init_app(app)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("ENV_NAME") == "production":
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            # pages may show private contacts: keep them out of shared caches and the back-forward cache
            headers.setdefault("Cache-Control", "no-store")
        return response

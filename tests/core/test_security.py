"""Does every response carry the security headers, and does production refuse an unsafe configuration?"""
from __future__ import annotations

import pytest

from matchmaker import create_app
from matchmaker.core.security import InsecureConfig
from tests.helpers import Api, make_token


@pytest.mark.parametrize("path", ["/", "/needs", "/login", "/static/css/app.css", "/no-such-page"])
def test_security_headers(client, path):
    """Are CSP (no inline script, no framing), nosniff, Referrer-Policy and X-Frame-Options always set?"""
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_html_pages_are_not_cached(client):
    """Are HTML pages (which may show private contacts) marked no-store?"""
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_code(app):
    """Do templates avoid inline <script> code, style attributes and event handlers (either quote), which the
    CSP would block (a delete's confirm() in onsubmit='…' was silently skipped)?"""
    import re
    from pathlib import Path
    offenders = []
    for path in Path(app.template_folder).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>|\sstyle=[\"']|\son[a-z]+=[\"']", text):
            offenders.append(f"{path.name}: {match.group(0).strip()}")
    assert not offenders, offenders


@pytest.mark.parametrize("secret", [None, "short", "a" * 64])
def test_production_refuses_weak_secret(monkeypatch, tmp_path, secret):
    """Does the app refuse to start in production without a strong SECRET_KEY?"""
    monkeypatch.setenv("MATCHMAKER_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite'}")
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(InsecureConfig):
        create_app()


def test_production_with_strong_secret_starts_hardened(monkeypatch, tmp_path):
    """With a strong key, does production start with secure cookies, HSTS and proxy awareness?"""
    monkeypatch.setenv("MATCHMAKER_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite'}")
    monkeypatch.setenv("SECRET_KEY", "k3Y-" + "0123456789abcdefghijklmnopqrstuvwxyz")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    response = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]


@pytest.mark.parametrize("path", ["/needs?q=%00", "/capabilities?q=%00", "/api/v1/needs?q=%00",
                                  "/needs?q=%E7%94%B5%00%E6%B1%A0&page=1", "/needs?%00=1", "/capabilities?q=a%00"])
def test_nul_in_query_string_is_cleaned_like_form_text(app, client, world, path):
    """Regression (2026-12-07): a NUL byte in a search query was a 500 on PostgreSQL (text cannot hold NUL);
    is it removed, as form fields remove it, so the page answers as for the query without it?"""
    response = (Api(app, make_token(world["enterprise"])) if path.startswith("/api/") else client).get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


def test_the_cleaned_query_is_the_query_without_nul(app, client, world):
    """Does "电\\0池" search exactly as "电池" does?"""
    with app.test_request_context("/needs?q=%E7%94%B5%00%E6%B1%A0&x%00y=1"):
        from flask import request
        assert request.args["q"] == "电池" and request.args["xy"] == "1"


def test_favicon_is_found(client):
    """Regression (2026-12-07): /favicon.ico was a 404 on every first visit; does it lead to the icon?"""
    response = client.get("/favicon.ico", follow_redirects=True)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"

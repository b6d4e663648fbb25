"""Matchmaker (科创对接): technology supply–demand matchmaking for the 科创中国 programme."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .config import load_config
from .extensions import babel, configure_sqlite, csrf, db, login_manager, migrate, ping_idle_connections

_PKG = Path(__file__).resolve().parent


def _templates_dir() -> str:
    # Source checkout: ../templates (the fixed layout). Installed wheel: matchmaker/templates.
    repo_templates = _PKG.parent / "templates"
    return str(repo_templates if repo_templates.is_dir() else _PKG / "templates")


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, template_folder=_templates_dir())
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
        ping_idle_connections(db.engine, app.config["DB_PING_IDLE_SECONDS"])
    migrate.init_app(app, db, directory=str(_PKG / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message_category = "warning"
    # Flask-Login's own prompt is English only: ours is in the catalogue, rendered in the visitor's language
    login_manager.login_message = _l("Please log in to access this page.")
    login_manager.localize_callback = str
    babel.init_app(app, locale_selector=_select_locale)

    from . import models  # noqa: F401  (register every table with the metadata)
    # (the models also register their audit labels; the views import the operations, which connect their
    # receivers of the domains' signals: core.signals)
    from .accounts.views import bp as accounts_bp
    from .admin.views import bp as admin_bp
    from .listings.views import bp as listings_bp
    from .main import bp as main_bp
    from .review.views import bp as review_bp
    from .notifications.views import bp as notifications_bp
    from .suggestions.views import bp as suggestions_bp
    from .api.views import bp as api_bp, tokens_bp as api_tokens_bp
    from .fairs.views import bp as fairs_bp
    from .challenges.views import bp as challenges_bp
    from .vouchers.views import bp as vouchers_bp
    from .dashboards.views import bp as dashboards_bp
    from .pairings.views import bp as pairings_bp
    from .bulk.views import bp as bulk_bp
    from .core import errors, pagecache, security, sharedcache, templating

    app.register_blueprint(main_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(listings_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(suggestions_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_tokens_bp)
    app.register_blueprint(fairs_bp)
    app.register_blueprint(challenges_bp)
    app.register_blueprint(vouchers_bp)
    app.register_blueprint(dashboards_bp)
    app.register_blueprint(pairings_bp)
    app.register_blueprint(bulk_bp)
    errors.register(app)
    security.register(app)
    templating.register(app)
    # core knows nothing of sessions or the match indexes: the page cache's key is handed what it reads of them
    from .accounts.sessions import current_and_settled
    from .matching_service import index_versions, init_matching
    pagecache.register(app, index_versions=index_versions, session_settled=current_and_settled)
    sharedcache.register(app)
    # after the page cache's hook: the request id and timer start first, even for a page served from cache
    from .observability import logs as observability_logs
    from .observability.views import bp as observability_bp
    observability_logs.register(app)
    app.register_blueprint(observability_bp)

    init_matching(app)
    # importing the worker also connects its thread's start to engine_loaded
    from .indexing.worker import check_mode
    check_mode(app)
    from .notifications.mail import check_mode as check_mail_mode
    check_mail_mode(app)

    observability_logs.configure_logging(app)
    return app


def _select_locale() -> str:
    supported = ["zh_CN", "en"]
    if not has_request_context():  # CLI, seeding, post-commit hooks: the default language
        return "zh_CN"
    chosen = request.args.get("lang") or session.get("lang")
    if chosen in supported:
        return chosen
    if current_user and getattr(current_user, "is_authenticated", False):
        return current_user.locale
    return "zh_CN"


@login_manager.user_loader
def _load_user(token: str):
    """The signed-in user with what every page reads of them (roles, memberships and their organizations,
    the expert profile, the navigation's unread count) in one query: joined, not the relationships' own
    selectin/lazy loads and a separate COUNT (five round trips on every request, a third of an uncached
    page's CPU; docs/benchmarks.md, Web load)."""
    from sqlalchemy.orm import joinedload

    from .accounts.models import User
    from .notifications.operations import remember_unread_count, unread_count_of_user
    stmt = db.select(User, unread_count_of_user(User.id)).filter_by(session_token=token).options(
        joinedload(User.roles), joinedload(User.memberships), joinedload(User.expert_profile))
    row = db.session.execute(stmt).unique().one_or_none()
    if row is None:
        return None
    user, unread = row
    remember_unread_count(user, unread)
    return user

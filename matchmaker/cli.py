"""The ``matchmaker`` command: Flask's CLI with the app factory plus project commands."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import FlaskGroup

from . import create_app
from .seeding import DEFAULT_DEMO_PASSWORD


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """Matchmaker (科创对接) management commands."""


@main.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema to the newest migration."""
    from flask_migrate import upgrade
    upgrade()
    click.echo("Database is at the newest schema.")


@main.command("seed")
@click.option("--demo-password", envvar="MATCHMAKER_DEMO_PASSWORD", default=DEFAULT_DEMO_PASSWORD,
              show_default=True, help="Password for the demo accounts.")
@click.option("--scale", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Listings at N times the demo size (generated variants; for load tests, not the demo).")
@click.option("--allow-production", is_flag=True,
              help="Seed even with MATCHMAKER_ENV=production (needs a --demo-password of your own).")
def seed(demo_password: str, scale: int, allow_production: bool) -> None:
    """Load the demo data set from seeds/ (idempotent: running it twice changes nothing)."""
    from .seeding import load_seeds, seed_demo_activity
    if current_app.config.get("ENV_NAME") == "production":
        _check_production_seed(demo_password, allow_production)
    report = load_seeds(demo_password=demo_password, scale=scale)
    report.update(seed_demo_activity())
    for key, value in report.items():
        click.echo(f"{key}: {value}")


def _check_production_seed(demo_password: str, allow_production: bool) -> None:
    """The demo accounts include an administrator: in production they need an explicit yes and a password
    that is not the one published in the README."""
    if not allow_production:
        raise click.ClickException(
            "refusing to seed a production database (MATCHMAKER_ENV=production): the demo accounts include an "
            "administrator; pass --allow-production with a --demo-password of your own (or "
            "MATCHMAKER_DEMO_PASSWORD) to seed anyway")
    if demo_password == DEFAULT_DEMO_PASSWORD:
        raise click.ClickException(
            "refusing to seed a production database with the default demo password (it is published): "
            "set --demo-password or MATCHMAKER_DEMO_PASSWORD to a password of your own")
    from flask_babel import force_locale

    from .accounts.operations import password_problems
    with force_locale("en"):
        problems = [str(p) for p in password_problems(demo_password)]
    if problems:
        raise click.ClickException("the demo password is too weak for production: " + " ".join(problems))


@main.command("create-admin")
@click.argument("email")
def create_admin(email: str) -> None:
    """Grant the admin role to an existing account (the first admin cannot be appointed on the web)."""
    from .admin.operations import bootstrap_admin
    from .core.workflow import WorkflowError
    from .extensions import db
    try:
        user = bootstrap_admin(email)
    except WorkflowError as exc:
        raise click.ClickException(exc.reason) from None
    db.session.commit()
    click.echo(f"{user.email} is an administrator.")


@main.command("reindex")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def reindex(quiet: bool) -> None:
    """Rebuild the matching indexes from the database (the source of truth), atomically."""
    from .indexing.sync import rebuild_from_db
    status = rebuild_from_db(progress=not quiet)
    for kind, info in status.items():
        click.echo(f"{kind}: {info['count']} listings, {info['index_type']}, model {info['model_id']}")


def _serve_command():
    """Flask's `run` (the development server), loading the matching engine at start rather than on the first
    search (in the serving process: with the reloader, the child)."""
    import os

    from flask.cli import ScriptInfo, run_command

    @click.command("run", params=run_command.params, help=run_command.help, short_help=run_command.short_help)
    @click.pass_context
    def run(ctx, **options):
        app = ctx.ensure_object(ScriptInfo).load_app()
        reloads = options.get("reload") if options.get("reload") is not None else app.debug
        if not reloads or os.environ.get("WERKZEUG_RUN_MAIN") == "true":
            from .matching_service import start_loading
            start_loading(app)
        ctx.invoke(run_command, **options)

    return run


main.add_command(_serve_command())


def _register_matching_commands() -> None:
    # eval and bench work on files in memory and need neither the app nor its database.
    from .matching.cli import bench_group, eval_command
    main.add_command(eval_command)
    main.add_command(bench_group)


_register_matching_commands()


def _register_domain_commands() -> None:
    from .fairs.cli import fairs_expire
    from .backup import backup_command, restore_command
    from .indexing.cli import worker_command
    from .notifications.cli import mail_worker_command
    from .pairings.cli import digest_command
    from .vouchers.cli import vouchers_expire
    main.add_command(fairs_expire)
    main.add_command(vouchers_expire)
    main.add_command(digest_command)
    main.add_command(backup_command)
    main.add_command(restore_command)
    main.add_command(worker_command)
    main.add_command(mail_worker_command)


_register_domain_commands()

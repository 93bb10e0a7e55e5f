"""Flask CLI commands for operators: ``flask registry …``, ``flask backlog …``."""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from jobs.cli import jobs_cli, rq_cli
from jobs.sync import sync_repository
from marketplace.accounts.models import User
from marketplace.accounts.roles import RoleError, grant_admin, withdraw_admin
from marketplace.accounts.service import user_by_email
from marketplace.audit import service as audit
from marketplace.backlog.snapshot import SnapshotError, load_snapshot
from marketplace.extensions import db
from marketplace.forges.models import Repository, SyncRun
from marketplace.forges.service import find_repository
from marketplace.ledger.check import check
from marketplace.projects.registry import (
    RegistryError,
    import_registry,
    load_registry_file,
)
from marketplace.standins.stripe import LocalStripe
from marketplace.timeutil import utcnow

registry_cli = AppGroup("registry", help="The DPG registry.")
backlog_cli = AppGroup("backlog", help="The public backlog.")


@registry_cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--include-archived", is_flag=True, help="Also import archived and excluded records.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid records and report the invalid ones.")
def registry_import(path: str, include_archived: bool, skip_invalid: bool) -> None:
    """Import member projects from the DPGA registry JSON at PATH (one transaction)."""
    try:
        records = load_registry_file(path)
        summary = import_registry(records, include_archived=include_archived, skip_invalid=skip_invalid)
    except RegistryError as exc:
        db.session.rollback()
        click.echo("Registry import failed; nothing was imported:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    db.session.commit()
    for line in summary.lines():
        click.echo(line)


@backlog_cli.command("load-snapshot")
@click.argument("directory", type=click.Path(file_okay=False))
def backlog_load_snapshot(directory: str) -> None:
    """Load recorded GitHub list-issues responses from DIRECTORY (one transaction)."""
    try:
        summaries = load_snapshot(directory)
    except SnapshotError as exc:
        db.session.rollback()
        click.echo("Snapshot load failed; nothing was loaded:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    db.session.commit()
    for summary in summaries:
        click.echo(summary.line())
        for note in summary.notes:
            click.echo(f"  {note}")


@click.command("sync")
@click.argument("repository")
@click.option("--full", is_flag=True, help="Read every issue, not only what changed since the last sync.")
def sync_command(repository: str, full: bool) -> None:
    """Sync one REPOSITORY now, in this process, with a progress bar.

    REPOSITORY is ``owner/name`` (GitHub), ``host/owner/name`` or a repository id.
    """
    repo = _find_repository(repository)
    if repo is None:
        raise click.UsageError(f"no repository {repository!r} in the commons")
    with click.progressbar(length=0, label=f"Syncing {repo.host}/{repo.full_name}",
                           item_show_func=lambda text: text) as bar:
        def progress(run: SyncRun) -> None:
            bar.update(1, f"{run.pages} pages, {run.items_seen} issues, {run.pull_requests_seen} pull requests")

        run_id = sync_repository(repo.id, full=full, progress=progress)
    run = db.session.get(SyncRun, run_id)
    click.echo(f"{run.status.value}: {run.pages} pages ({run.not_modified} unchanged), "
               f"{run.items_seen} issues, {run.pull_requests_seen} pull requests")
    if run.error:
        click.echo(run.error, err=True)
    if run.status.value not in ("done",):
        raise SystemExit(1)


def _find_repository(text: str):
    if text.isdigit():
        return db.session.get(Repository, int(text))
    parts = text.strip("/").split("/")
    if len(parts) == 2:
        return find_repository("github.com", parts[0], parts[1])
    if len(parts) >= 3:
        return find_repository(parts[0], "/".join(parts[1:-1]), parts[-1])
    return None


users_cli = AppGroup("users", help="Accounts.")
ledger_cli = AppGroup("ledger", help="The double-entry ledger.")


@ledger_cli.command("check")
def ledger_check() -> None:
    """Verify every ledger invariant in SQL; exit 1 naming each violation."""
    violations = check()
    for violation in violations:
        click.echo(str(violation), err=True)
    if violations:
        click.echo(f"{len(violations)} ledger invariant violations", err=True)
        raise SystemExit(1)
    click.echo("ledger ok: every invariant holds")


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", help="Display name.")
@click.password_option(envvar="BACKLOG_ADMIN_PASSWORD", show_envvar=True,
                       help="Password, at least 12 characters (asked twice when neither this nor the "
                            "environment variable gives it).")
def create_admin(email: str, name: str, password: str) -> None:
    """Create an admin account (the fiscal host) that signs in with EMAIL."""
    email = email.strip()
    if "@" not in email or len(email) > 320:
        raise click.UsageError(f"{email!r} is not an e-mail address")
    if len(password) < 12:
        raise click.UsageError("the password must have at least 12 characters")

    if user_by_email(email) is not None:
        raise click.UsageError(f"an account with {email} exists already")
    # The operator vouches for the address: it is confirmed.
    user = User(display_name=name, is_admin=True, email_verified_at=utcnow())
    user.set_email(email)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("user.created_admin", "user_account", user.id, actor="cli:users create-admin")
    db.session.commit()
    click.echo(f"admin {email} created")


def _account_or_fail(email: str):
    user = user_by_email(email.strip())
    if user is None:
        raise click.UsageError(f"no account uses {email!r}")
    return user


@users_cli.command("grant-admin")
@click.argument("email")
def grant_admin_command(email: str) -> None:
    """Make the account that signs in with EMAIL an admin (audited)."""
    user = _account_or_fail(email)
    changed = grant_admin(user, actor="cli:users grant-admin")
    db.session.commit()
    click.echo(f"{email} is an admin" if changed else f"{email} was an admin already: nothing changed")


@users_cli.command("withdraw-admin")
@click.argument("email")
def withdraw_admin_command(email: str) -> None:
    """Withdraw the admin role from the account of EMAIL (audited); never from the last admin."""
    user = _account_or_fail(email)
    try:
        changed = withdraw_admin(user, actor="cli:users withdraw-admin")
    except RoleError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"{email} is no longer an admin" if changed else f"{email} was not an admin: nothing changed")


payments_cli = AppGroup("payments", help="Payments.")


@payments_cli.command("local-stripe")
@click.option("--port", default=12111, show_default=True)
@click.option("--webhook-url", default=None, help="Where to send signed events (default: this site's).")
def local_stripe(port: int, webhook_url: str | None) -> None:
    """Run a local stand-in for Stripe's API (demo and development only).

    Start the app with STRIPE_API_KEY=sk_test_local, STRIPE_API_BASE=http://127.0.0.1:PORT and the
    same STRIPE_WEBHOOK_SECRET as here.
    """


    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise click.UsageError("set STRIPE_WEBHOOK_SECRET (the same value as the app's)")
    url = webhook_url or current_app.config["PUBLIC_URL"].rstrip("/") + "/webhooks/stripe"
    server = LocalStripe(port=port, webhook_url=url, webhook_secret=secret)
    click.echo(f"local Stripe on {server.url}, sending events to {url}")
    server.wait()


def register_cli(app: Flask) -> None:
    """Attach the command groups to ``app``."""
    app.cli.add_command(registry_cli)
    app.cli.add_command(backlog_cli)
    app.cli.add_command(rq_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(sync_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(payments_cli)

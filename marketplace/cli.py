"""Flask CLI commands for operators: ``flask registry …``, ``flask backlog …``."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import click
from flask import Flask
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
from marketplace.ledger.summary import refresh as refresh_ledger_summary
from marketplace.projects.registry import (
    RegistryError,
    import_registry,
    load_registry_file,
)
from marketplace.reports.screening import import_screening, load_screening_file
from marketplace.timeutil import utcnow

registry_cli = AppGroup("registry", help="The DPG registry.")
backlog_cli = AppGroup("backlog", help="The public backlog.")


def input_digest(paths: list[Path], **options: object) -> str:
    """SHA-256 (hex) of the files at ``paths`` (names and bytes, in the order
    given) and of the ``options`` that change what an import does."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _unchanged(action: str, digest: str, if_changed: bool, label: str) -> bool:
    """With ``--if-changed``, say so and return True when the last ``action`` had this input."""
    last = audit.latest(action) if if_changed else None
    if last is not None and last.details.get("digest") == digest:
        click.echo(f"{label}: input unchanged since {last.occurred_at:%Y-%m-%d %H:%M} UTC, not imported again")
        return True
    return False


@registry_cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--include-archived", is_flag=True, help="Also import archived and excluded records.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid records and report the invalid ones.")
@click.option("--if-changed", is_flag=True, help="Do nothing when PATH is what the last import read.")
@click.option("-v", "--verbose", is_flag=True, help="A line for every notable record, not only the summary.")
def registry_import(path: str, include_archived: bool, skip_invalid: bool, if_changed: bool, verbose: bool) -> None:
    """Import member projects from the DPGA registry JSON at PATH (one transaction), and their
    deployment and development countries from screening.json beside it when it is there."""
    screening = Path(path).with_name("screening.json")
    inputs = [Path(path)] + ([screening] if screening.is_file() else [])
    digest = input_digest(inputs, include_archived=include_archived, skip_invalid=skip_invalid)
    if _unchanged("registry.imported", digest, if_changed, "registry"):
        return
    try:
        records = load_registry_file(path)
        summary = import_registry(records, include_archived=include_archived, skip_invalid=skip_invalid)
    except RegistryError as exc:
        db.session.rollback()
        click.echo("Registry import failed; nothing was imported:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    lines = summary.lines()
    if screening.is_file():
        screened = import_screening(load_screening_file(screening)).lines()
        lines.append(f"screening: {screened[0]}")
        lines += screened[1:]
    audit.record("registry.imported", "registry", None, actor="cli",
                 details={"digest": digest, "path": Path(path).name, "summary": lines[0]})
    db.session.commit()
    if verbose:
        for line in lines:
            click.echo(line)
        return
    notes = len(lines) - 1
    click.echo(f"registry: {lines[0]}" + (f"; {notes} more lines (-v shows them)" if notes else ""))


@backlog_cli.command("load-snapshot")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--if-changed", is_flag=True, help="Do nothing when DIRECTORY holds what the last load read.")
@click.option("-v", "--verbose", is_flag=True, help="A line for every file and its notes, not only the summary.")
def backlog_load_snapshot(directory: str, if_changed: bool, verbose: bool) -> None:
    """Load recorded GitHub list-issues responses from DIRECTORY (one transaction)."""
    files = sorted(path for path in Path(directory).rglob("*") if path.is_file()) if Path(directory).is_dir() else []
    digest = input_digest(files)
    if _unchanged("snapshot.loaded", digest, if_changed, "snapshot"):
        return
    try:
        summaries = load_snapshot(directory)
    except SnapshotError as exc:
        db.session.rollback()
        click.echo("Snapshot load failed; nothing was loaded:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    audit.record("snapshot.loaded", "snapshot", None, actor="cli",
                 details={"digest": digest, "directory": Path(directory).name, "files": len(summaries)})
    db.session.commit()
    if verbose:
        for summary in summaries:
            click.echo(summary.line())
            for note in summary.notes:
                click.echo(f"  {note}")
        return
    items, pulls = Counter(), Counter()
    for summary in summaries:
        items.update(summary.items)
        pulls.update(summary.pull_requests)
    notes = sum(len(summary.notes) for summary in summaries)

    def counts(counter: Counter) -> str:
        return ", ".join(f"{kind} {count}" for kind, count in sorted(counter.items())) or "none"

    click.echo(f"snapshot: {len(summaries)} repositories; items {counts(items)}; pull requests {counts(pulls)}"
               + (f"; {notes} notes (-v shows them)" if notes else ""))


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
reports_cli = AppGroup("reports", help="Public reports and the public data export.")


@reports_cli.command("refresh")
def reports_refresh() -> None:
    """Recompute the stored commons report and the reports of projects that had money, now."""
    from marketplace.reports import public

    count = public.refresh_all()
    db.session.commit()
    click.echo(f"reports: {count} reports recomputed (the commons and {count - 1} projects)")


@reports_cli.command("export")
@click.option("--directory", type=click.Path(file_okay=False), default=None,
              help="Where to write the archive (default: REPORTS_EXPORT_DIR or instance/exports).")
def reports_export(directory: str | None) -> None:
    """Write today's (UTC) public data export archive."""
    from marketplace.reports.exports import build_archive, export_directory

    path = build_archive(Path(directory) if directory else export_directory(), utcnow().date())
    click.echo(f"export: {path} ({path.stat().st_size} bytes)")


@ledger_cli.command("check")
def ledger_check() -> None:
    """Verify every ledger invariant in SQL (a full pass over every entry) and
    store the result with fresh totals in the ledger summary that the public
    pages show; exit 1 naming each violation."""
    violations = refresh_ledger_summary()
    db.session.commit()
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


def register_cli(app: Flask) -> None:
    """Attach the command groups to ``app``."""
    app.cli.add_command(registry_cli)
    app.cli.add_command(backlog_cli)
    app.cli.add_command(rq_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(sync_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(reports_cli)

"""``make run``: the app on embedded defaults, with every outside service stood in for.

``python -m marketplace.standins.serve [--host H] [--port P] [--demo]`` starts,
in one process: the local Stripe (unless ``STRIPE_API_KEY`` names a real
one), the local forge (unless a real GitHub OAuth app is configured), the
mail outbox (unless ``MAIL_SERVER`` is set), the in-process scheduler (unless
``REDIS_URL`` is set: then run ``flask rq worker`` and ``flask rq cron``), and
the app itself on Werkzeug's threaded server. It refuses to start when
:func:`marketplace.standins.refusals` finds a production setting.

Settings it chooses unless the environment sets them: a 2-minute payout
dispute window (``PAYOUT_DISPUTE_WINDOW_MINUTES``) and interval jobs at least
every 60 seconds (``SCHEDULE_INTERVAL_CAP_SECONDS``), so the whole loop can be
walked through in minutes. The stand-ins' state is kept in ``instance/``
beside the database, so a restart keeps what they knew.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import sys
from pathlib import Path

from werkzeug.serving import run_simple

from marketplace import config as config_module
from marketplace import create_app
from marketplace.scheduling.service import InProcessScheduler
from marketplace.standins import refusals
from marketplace.standins.forge import LocalForge, issues_in_database, repositories_in_database
from marketplace.standins.stripe import LocalStripe

log = logging.getLogger("marketplace.standins")


def derived_secret(secret_key: str, purpose: str) -> str:
    """A secret for ``purpose`` derived from the app's ``SECRET_KEY`` (HMAC-SHA256, hex), so the
    stand-ins sign their webhook deliveries with no setting of their own."""
    return hmac.new(secret_key.encode(), f"standin:{purpose}".encode(), hashlib.sha256).hexdigest()


class StandIns:
    """The running stand-ins and the configuration that points the app at them."""

    def __init__(self) -> None:
        self.overrides: dict = {}
        self.servers: list = []
        self.links: dict[str, str] = {}  # label → URL, for the /dev page and the banner

    def stop(self) -> None:
        """Save and stop every stand-in server."""
        for server in self.servers:
            if hasattr(server, "save"):
                server.save()
            server.stop()


def start(config: dict, public_url: str, state_dir: Path) -> StandIns:
    """Start the stand-ins that ``config`` (the environment's settings) leaves
    unconfigured; return them with the overrides for :func:`create_app`.
    Raises ``SystemExit`` (with the reasons) when :func:`refusals` finds any."""
    reasons = refusals(config)
    if reasons:
        raise SystemExit("The local stand-ins cannot start here: " + "; ".join(reasons) + ".")
    secret_key = config["SECRET_KEY"]
    standins = StandIns()
    state_dir.mkdir(parents=True, exist_ok=True)
    overrides = standins.overrides
    if not config.get("STRIPE_API_KEY"):
        webhook_secret = "whsec_" + derived_secret(secret_key, "stripe")
        stripe = LocalStripe(webhook_url=public_url + "/webhooks/stripe", webhook_secret=webhook_secret,
                             state_path=str(state_dir / "local-stripe.json"))
        standins.servers.append(stripe)
        overrides.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=stripe.url,
                         STRIPE_WEBHOOK_SECRET=webhook_secret)
        standins.links["stripe"] = stripe.url + "/dashboard"
    forge = _start_forge(config, public_url, secret_key, state_dir)
    if forge is not None:
        server, forge_overrides = forge
        standins.servers.append(server)
        overrides.update(forge_overrides)
        standins.links["forge"] = server.url
    if forge is not None and not (config.get("GITHUB_TOKEN") or config.get("GITHUB_APP_ID")):
        # Issues come from the seed snapshot and the local forge's deliveries; there is
        # nothing to sync from (and on a laptop without a network, nothing to reach).
        overrides["SCHEDULE_SKIP"] = ["incremental-sync", "reconciliation"]
    if not config.get("MAIL_SERVER"):
        overrides["MAIL_OUTBOX_DIR"] = str(state_dir / "mail")
        standins.links["mail"] = public_url + "/dev/mail"
    overrides["STANDINS"] = dict(standins.links)
    return standins


def _start_forge(config: dict, public_url: str, secret_key: str, state_dir: Path):
    """The local forge, as ``(server, overrides)``, or None when a real GitHub OAuth app is set.
    It reads the app's GitHub repositories and issues from the app's database, so its deliveries
    carry the repository and issue ids the app knows, its pull requests take free numbers,
    and a merge closes the issue it fixes."""
    if config.get("GITHUB_OAUTH_CLIENT_ID"):
        return None
    webhook_secret = derived_secret(secret_key, "github")
    server = LocalForge(webhook_url=public_url + "/webhooks/github", webhook_secret=webhook_secret,
                        state_path=str(state_dir / "local-forge.json"),
                        repositories=repositories_in_database(config["SQLALCHEMY_DATABASE_URI"]),
                        issues=issues_in_database(config["SQLALCHEMY_DATABASE_URI"]))
    return server, server.app_config(webhook_secret)


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv``, start the stand-ins, the scheduler and the app; serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m marketplace.standins.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 5000))
    parser.add_argument("--demo", action="store_true", help="label every page as demo data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request: the links stay visible
    public_url = f"http://{args.host}:{args.port}"
    config = config_module.from_environment()
    if not os.environ.get("PUBLIC_URL"):
        config["PUBLIC_URL"] = public_url
    if not config.get("SECRET_KEY"):
        raise SystemExit("Set SECRET_KEY (make run keeps one in instance/secret_key).")
    state_dir = Path(config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).parent \
        if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///") else config_module.INSTANCE_DIR
    standins = start(config, config["PUBLIC_URL"], state_dir / "standins")
    overrides = dict(standins.overrides, PUBLIC_URL=config["PUBLIC_URL"], SESSION_COOKIE_SECURE=False,
                     DEMO=args.demo)
    if os.environ.get("PAYOUT_DISPUTE_WINDOW_MINUTES") is None and not os.environ.get("PAYOUT_DISPUTE_WINDOW_DAYS"):
        overrides["PAYOUT_DISPUTE_WINDOW_MINUTES"] = 2
    if args.demo and not (config.get("GITHUB_TOKEN") or config.get("GITHUB_APP_ID")):
        # The demo's issues are the seed snapshot and its month: a sync with the real
        # forge would change the items under the demo's money (and wait on the network).
        overrides["SCHEDULE_SKIP"] = ["incremental-sync", "reconciliation"]
    if os.environ.get("SCHEDULE_INTERVAL_CAP_SECONDS") is None:
        overrides["SCHEDULE_INTERVAL_CAP_SECONDS"] = 60
    app = create_app(overrides)
    scheduler = None if app.config.get("REDIS_URL") else InProcessScheduler(app).start()
    lines = [f"Backlog Commons on {config['PUBLIC_URL']}{'  (demo data)' if args.demo else ''}"]
    labels = {"stripe": "local Stripe (dashboard)", "forge": "local forge", "mail": "e-mails sent (outbox)"}
    lines += [f"  {labels[name]:<26} {url}" for name, url in standins.links.items()]
    lines.append("  scheduled jobs             " + ("in this process" if scheduler else "RQ (REDIS_URL is set)"))
    print("\n".join(lines), flush=True)
    try:
        run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    finally:
        if scheduler:
            scheduler.stop()
        standins.stop()


if __name__ == "__main__":
    main(sys.argv[1:])

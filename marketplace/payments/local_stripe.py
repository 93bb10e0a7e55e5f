"""A local stand-in for the parts of Stripe's API the commons uses, for the demo
and the tests (``flask payments local-stripe``). Never used in production.

It answers ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``,
``POST /v1/refunds`` and ``GET /v1/refunds`` in Stripe's object shapes, and
serves a page at each session's ``url`` with a "Pay" button: paying marks the
session paid, sends ``checkout.session.completed`` to the webhook URL signed
exactly as Stripe signs (``Stripe-Signature: t=…,v1=HMAC-SHA256``), and sends
the browser to the session's ``success_url``.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload`` (Stripe's scheme v1)."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class LocalStripe:
    """The server; ``url`` is its base address. Sessions and refunds live in memory."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, webhook_url: str | None = None,
                 webhook_secret: str | None = None):
        self.sessions: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []  # method, path, form, headers
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self) -> None:
        self._thread.join()

    def pay(self, session_id: str, payment_status: str = "paid") -> dict:
        """What happens on Stripe's page: the funder pays. Returns the session."""
        self.sessions[session_id].update(payment_status=payment_status, status="complete")
        return copy.deepcopy(self.sessions[session_id])

    def send_event(self, event_type: str, obj: dict) -> int:
        """POST a signed event to the webhook URL; returns the HTTP status."""
        event = {"id": f"evt_local_{int(time.time() * 1000)}", "object": "event", "type": event_type,
                 "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
                 "pending_webhooks": 1, "data": {"object": obj}, "request": {"id": None, "idempotency_key": None}}
        payload = json.dumps(event)
        request = urllib.request.Request(self.webhook_url, data=payload.encode(), method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload, self.webhook_secret)})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    def create_session(self, form: dict, key: str | None) -> dict:
        if key and key in self.by_idempotency_key:
            return self.sessions[self.by_idempotency_key[key]]
        session_id = f"cs_test_local_{len(self.sessions) + 1:04d}"
        self.sessions[session_id] = {
            "id": session_id, "object": "checkout.session", "mode": "payment", "status": "open",
            "payment_status": "unpaid", "url": f"{self.url}/pay/{session_id}",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["line_items[0][price_data][currency]"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {"pledge_id": form.get("metadata[pledge_id]")},
            "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
            "payment_intent": f"pi_test_{session_id}", "livemode": False,
        }
        if key:
            self.by_idempotency_key[key] = session_id
        return self.sessions[session_id]

    def create_refund(self, form: dict, key: str | None) -> dict:
        if key and key in self.refunds:
            return self.refunds[key]
        refund = {"id": f"re_test_{len(self.refunds) + 1:04d}", "object": "refund", "amount": int(form["amount"]),
                  "payment_intent": form["payment_intent"], "status": "succeeded", "currency": "usd"}
        self.refunds[key or refund["id"]] = refund
        return refund

    def _handler(self):
        stripe_server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict | str, content_type: str = "application/json"):
                raw = (json.dumps(body) if content_type == "application/json" else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlsplit(self.path).path
                stripe_server.requests.append(("POST", path, form, dict(self.headers)))
                key = self.headers.get("Idempotency-Key")
                if path == "/v1/checkout/sessions":
                    return self._reply(200, stripe_server.create_session(form, key))
                if path == "/v1/refunds":
                    return self._reply(200, stripe_server.create_refund(form, key))
                if path.startswith("/pay/") and path[5:] in stripe_server.sessions:
                    session = stripe_server.pay(path[5:])
                    if stripe_server.webhook_url:
                        stripe_server.send_event("checkout.session.completed", session)
                    target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
                    self.send_response(303)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._reply(404, {"error": {"message": "Unrecognized request URL",
                                                   "type": "invalid_request_error"}})

            def do_GET(self):  # noqa: N802
                split = urlsplit(self.path)
                path = split.path
                stripe_server.requests.append(("GET", path, {}, dict(self.headers)))
                tail = path.rsplit("/", 1)[-1]
                if path == "/v1/refunds":
                    intent = parse_qs(split.query).get("payment_intent", [""])[0]
                    data = [r for r in stripe_server.refunds.values() if r["payment_intent"] == intent]
                    return self._reply(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})
                if path.startswith("/v1/checkout/sessions/") and tail in stripe_server.sessions:
                    return self._reply(200, stripe_server.sessions[tail])
                if path.startswith("/pay/") and tail in stripe_server.sessions:
                    session = stripe_server.sessions[tail]
                    amount = f"{session['amount_total']} {session['currency'].upper()} (minor units)"
                    page = (f"<!doctype html><title>Local Stripe</title><h1>Local Stripe checkout</h1>"
                            f"<p>{html.escape(amount)}</p><form method=post><button>Pay</button></form>")
                    return self._reply(200, page, "text/html; charset=utf-8")
                return self._reply(404, {"error": {"message": "No such object", "type": "invalid_request_error"}})

            def log_message(self, *args):
                pass

        return Handler

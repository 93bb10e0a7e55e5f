"""A local HTTP server that answers the Stripe API calls the app makes, with
objects shaped like Stripe's published fixtures (tests/fixtures/stripe)."""
from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.conftest import FIXTURES


class FakeStripe:
    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []  # method, path, form, headers
        self._template = json.loads((FIXTURES / "stripe" / "checkout.session.json").read_text())
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def pay(self, session_id: str, payment_status: str = "paid") -> dict:
        """What happens on Stripe's page: the funder pays."""
        self.sessions[session_id].update(payment_status=payment_status, status="complete")
        return copy.deepcopy(self.sessions[session_id])

    def _create_session(self, form: dict, key: str | None) -> dict:
        if key and key in self.by_idempotency_key:
            return self.sessions[self.by_idempotency_key[key]]
        session_id = f"cs_test_{len(self.sessions) + 1:04d}"
        obj = copy.deepcopy(self._template)
        obj.update(
            id=session_id, url=f"{self.url}/pay/{session_id}", status="open", payment_status="unpaid",
            amount_total=int(form["line_items[0][price_data][unit_amount]"]),
            currency=form["line_items[0][price_data][currency]"],
            client_reference_id=form.get("client_reference_id"),
            metadata={"pledge_id": form.get("metadata[pledge_id]")},
            success_url=form.get("success_url"), cancel_url=form.get("cancel_url"),
            payment_intent=f"pi_test_{session_id}",
        )
        self.sessions[session_id] = obj
        if key:
            self.by_idempotency_key[key] = session_id
        return obj

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlsplit(self.path).path
                fake.requests.append(("POST", path, form, dict(self.headers)))
                if path == "/v1/checkout/sessions":
                    return self._reply(200, fake._create_session(form, self.headers.get("Idempotency-Key")))
                if path == "/v1/refunds":
                    return self._reply(200, _refunds(fake, form, self.headers.get("Idempotency-Key")))
                return self._reply(404, {"error": {"message": "Unrecognized request URL", "type": "invalid_request_error"}})

            def do_GET(self):  # noqa: N802
                path = urlsplit(self.path).path
                fake.requests.append(("GET", path, {}, dict(self.headers)))
                session_id = path.rsplit("/", 1)[-1]
                if path == "/v1/refunds":
                    intent = parse_qs(urlsplit(self.path).query).get("payment_intent", [""])[0]
                    data = [r for r in getattr(fake, "refunds", {}).values() if r["payment_intent"] == intent]
                    return self._reply(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})
                if path.startswith("/v1/checkout/sessions/") and session_id in fake.sessions:
                    return self._reply(200, fake.sessions[session_id])
                return self._reply(404, {"error": {"message": "No such checkout.session", "type": "invalid_request_error"}})

            def log_message(self, *args):
                pass

        return Handler


def _refunds(fake: FakeStripe, form: dict, key: str | None) -> dict:
    fake.refunds = getattr(fake, "refunds", {})
    if key and key in fake.refunds:
        return fake.refunds[key]
    refund = {"id": f"re_test_{len(fake.refunds) + 1:04d}", "object": "refund", "amount": int(form["amount"]),
              "payment_intent": form["payment_intent"], "status": "succeeded", "currency": "usd"}
    fake.refunds[key or refund["id"]] = refund
    return refund

"""What the local stand-ins share: an HTTP server in a daemon thread, and
their state kept in a JSON file written atomically (so a restarted
``make run`` keeps what they knew)."""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandInServer:
    """Base of a stand-in: :meth:`_serve` starts ``handler`` on ``host:port``
    (0: a free port) in a daemon thread; :attr:`url` is its base address."""

    def _serve(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def read_state(path: str) -> dict:
    """The state saved at ``path`` by :func:`write_state`; ``{}`` when there is none yet."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        return {}


def write_state(path: str, state: dict) -> None:
    """Write ``state`` as JSON to ``path`` through a temporary file renamed over it
    (a reader never sees half a file). Tuples and sets are written as lists."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(state, file, default=list)
    os.replace(temporary, path)

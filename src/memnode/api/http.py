"""The node's HTTP port (``--metrics-listen``): ``/metrics`` for Prometheus, and the
status dashboard, ``/`` (a page) over ``/status.json`` (see memnode.api.dashboard).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from memnode.api.dashboard import page

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    address_family = socket.AF_INET


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (a scrape every few seconds would fill the log)."""


def app(registry: CollectorRegistry, status: Callable[[], dict[str, Any]]
        ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)
    html = page()

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        if path in ("/", "/index.html"):
            body, kind = html, "text/html; charset=utf-8"
        elif path == "/status.json":
            body, kind = json.dumps(status()).encode(), "application/json"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /, /status.json or /metrics\n"]
        start_response("200 OK", [("Content-Type", kind), ("Cache-Control", "no-store"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return route


class HttpServer:
    """Serves ``app`` on ``host:port`` (port 0: any free one) from a daemon thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 status: Callable[[], dict[str, Any]]) -> None:
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, app(registry, status),
                                   server_class=server_class, handler_class=_Quiet)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="memnode-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()

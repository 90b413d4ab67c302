"""Run the sandbox with uvicorn: in a background thread (tests) or in the foreground (the CLI)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import uvicorn

from .app import create_app


class _Server(uvicorn.Server):
    """A uvicorn server that knows its bound port and can announce readiness."""

    announce = False
    close_db_on_shutdown = False  # foreground: uvicorn re-raises SIGTERM after shutdown, so close here

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self.announce:
            print(f"READY {self.url}", flush=True)

    async def shutdown(self, sockets: Any = None) -> None:
        await super().shutdown(sockets)
        if self.close_db_on_shutdown:
            self.config.app.state.sandbox.db.close()

    @property
    def url(self) -> str:
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


def _server(district: dict[str, Any], host: str, port: int, **kw: Any) -> _Server:
    app = create_app(district, **kw)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, workers=1,
                            lifespan="off")
    return _Server(config)


class ServerHandle:
    """A sandbox running in a daemon thread; ``url`` is its base URL, ``stop()`` shuts it down."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.url = server.url
        self.app = server.config.app

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self.app.state.sandbox.db.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(district: dict[str, Any], port: int = 0, host: str = "127.0.0.1", **kw: Any) -> ServerHandle:
    """Start the sandbox on ``host:port`` (0 = a free port) in a thread; returns once it accepts requests.

    ``kw`` goes to ``create_app`` (client_id, client_secret, db_path, max_page_size, today, policy ...).
    """
    server = _server(district, host, port, **kw)
    thread = threading.Thread(target=server.run, name="powerschool-sandbox", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the PowerSchool sandbox failed to start")
        thread.join(0.02)
    return ServerHandle(server, thread)


def serve_forever(district: dict[str, Any], host: str, port: int, **kw: Any) -> None:
    """Run in the foreground; prints ``READY http://HOST:PORT`` once it accepts connections."""
    server = _server(district, host, port, **kw)
    server.announce = True
    server.close_db_on_shutdown = True
    server.run()
    if not server.started:
        sys.exit(1)

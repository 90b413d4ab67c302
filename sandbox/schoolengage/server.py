"""Run the SchoolEngage sandbox: CLI (`python -m sandbox.schoolengage`) and an in-thread helper for tests."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn

from .app import DEFAULT_API_KEY, create_app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class ServerHandle:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str, app):
        self.server, self.thread, self.url, self.app = server, thread, url, app

    @property
    def store(self):
        return self.app.state.store

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_in_thread(submissions: list[dict] | None = None, port: int = 0, api_key: str = DEFAULT_API_KEY,
                    host: str = "127.0.0.1", timeout: float = 10.0) -> ServerHandle:
    """Serve the sandbox from a background thread; returns once it accepts requests."""
    app = create_app(submissions, api_key=api_key)
    sock = _bind(host, port)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="schoolengage-sandbox")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("SchoolEngage sandbox did not start")
        time.sleep(0.01)
    return ServerHandle(server, thread, _url(host, sock), app)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox.schoolengage", description="SchoolEngage sandbox")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = a free port")
    ap.add_argument("--submissions", type=Path, help="submissions.json written by sandbox.generate")
    ap.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = ap.parse_args(argv)
    submissions = []
    if args.submissions:
        submissions = json.loads(args.submissions.read_text(encoding="utf-8"))
        if not isinstance(submissions, list):
            ap.error(f"{args.submissions}: expected a JSON list of submissions")
    app = create_app(submissions, api_key=args.api_key)
    sock = _bind(args.host, args.port)
    url = _url(args.host, sock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.01)
        print(f"READY {url}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A tiny scripted HTTP server on 127.0.0.1 for retry/backoff/auth tests.

It is a stand-in for misbehaving servers (500/429/401 sequences, dropped connections, slow replies),
not a mock of our client: the client under test makes real HTTP requests over loopback.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds before answering


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class StandIn:
    """``script(method, path, *replies)`` queues replies for a route (path without query); when a
    route's queue is empty its last reply repeats; unknown routes get 404. ``/oauth/access_token`` answers
    a fresh token by default (``tok-1``, ``tok-2``...)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], deque[Reply]] = {}
        self.last: dict[tuple[str, str], Reply] = {}
        self.seen: list[Seen] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.require_token = True
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                path = self.path.split("?", 1)[0]
                with standin._lock:
                    standin.seen.append(Seen(self.command, self.path, dict(self.headers), raw))
                reply = standin._next(self.command, path, self.headers)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def script(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self.routes[(method, path)] = deque(replies)
            self.last[(method, path)] = replies[-1]

    def _next(self, method: str, path: str, headers: Any) -> Reply:
        with self._lock:
            key = (method, path)
            if key not in self.routes and path.rstrip("/") == "/oauth/access_token":
                self.tokens_issued += 1
                token = f"tok-{self.tokens_issued}"
                self.valid_tokens.add(token)
                return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": "3600"})
            if self.require_token and not path.startswith("/oauth"):
                auth = headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
                    return Reply(401, {"errorMessage": {"message": "Invalid token"}})
            queue = self.routes.get(key)
            if queue is None:
                return Reply(404, {"message": "not found"})
            return queue.popleft() if queue else self.last[key]

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.split("?", 1)[0] == path]

    def revoke_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

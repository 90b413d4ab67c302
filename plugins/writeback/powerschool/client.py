"""PowerSchool SIS REST client (``/oauth``, ``/ws/v1``, ``/ws/contacts``, ``/ws/schema``).

Thin by design: methods map one-to-one to endpoints and return plain dicts/lists or the small models of
:mod:`.shapes`. Cross-cutting behaviour lives in :meth:`PowerSchoolClient._call`:

- OAuth client-credentials token, cached until shortly before its expiry, re-fetched once on a 401;
- the retry policy of :func:`.retry.decide` (creates are never repeated blindly);
- an optional client-side rate limiter;
- typed errors (:mod:`.errors`) whose messages carry method + path only — never the secret, the token,
  a query string or a request body (they hold student PII);
- ``stats``: HTTP requests per client method (retries and token requests included).

No Airflow imports here: the Airflow hook builds this client from a Connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from ..http_client import SessionClient
from . import shapes
from .errors import (
    AmbiguousWriteError,
    AuthError,
    DuplicateError,
    PowerSchoolError,
    TransportError,
    ValidationError,
    error_from_response,
    redact_values,
)
from .retry import Outcome, RateLimiter, decide, is_safe_to_repeat, parse_retry_after
from .shapes import ContactWriteResult, RecordResult

__all__ = ["PowerSchoolClient", "CHILD_KINDS"]

log = logging.getLogger(__name__)

CHILD_KINDS = ("emails", "phones", "addresses")
TOKEN_PATH = "/oauth/access_token"
DEFAULT_PAGE_SIZE = 100
_CONTACT_IDS_PER_CALL = 100
_TOKEN_DEFAULT_TTL = 3600.0


def _seg(x: Any) -> str:
    """One URL path segment, escaped."""
    return quote(str(x), safe="")


def _csv(items: str | Iterable[Any] | None) -> str | None:
    if items is None:
        return None
    if isinstance(items, str):
        return items or None
    joined = ",".join(str(i) for i in items)
    return joined or None


class PowerSchoolClient(SessionClient):
    """Client for one district's PowerSchool server."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        requests_per_second: float | None = None,
        session: requests.Session | None = None,
    ):
        super().__init__(base_url, timeout=timeout, max_retries=max_retries, backoff=backoff, session=session)
        self.client_id = client_id
        self._client_secret = client_secret
        self.limiter = RateLimiter(requests_per_second)
        self.writes_succeeded = 0  # state-changing calls PowerSchool accepted (what an audit must explain)
        self.rate_limit_wait = 0.0  # seconds spent waiting for the client-side rate limiter
        self._stats_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._clock = time.monotonic

    def __repr__(self) -> str:
        return f"PowerSchoolClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    # ------------------------------------------------------------------------------------ plumbing

    @property
    def total_calls(self) -> int:
        return sum(self.stats.values())

    def reset_stats(self) -> None:
        with self._stats_lock:
            self.stats.clear()

    def _count(self, op: str) -> None:
        with self._stats_lock:
            self.stats[op] += 1

    def _token_value(self) -> str:
        with self._token_lock:
            if self._token and self._clock() < self._token_expires_at:
                return self._token
            body = self._call(
                "token",
                "POST",
                TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                basic_auth=(self.client_id, self._client_secret),
            )
            token = body.get("access_token") if isinstance(body, Mapping) else None
            if not token:
                raise AuthError(None, "token reply has no access_token", "POST", TOKEN_PATH)
            try:
                ttl = float(body.get("expires_in"))  # comes as a string
            except (TypeError, ValueError):
                ttl = _TOKEN_DEFAULT_TTL
            margin = min(60.0, ttl * 0.1)
            self._token = str(token)
            self._token_expires_at = self._clock() + max(0.0, ttl - margin)
            return self._token

    def _invalidate_token(self, token: str | None) -> None:
        with self._token_lock:
            if token is None or self._token == token:
                self._token = None
                self._token_expires_at = 0.0

    @staticmethod
    def _parse_body(resp: requests.Response) -> Any:
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text[:500]

    def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> Any:
        """One logical API call: auth, rate limit, retries, typed errors. Returns the parsed body
        (None for 204/empty)."""
        safe = is_safe_to_repeat(method, path)
        url = self.base_url + path
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        reauthenticated = False
        while True:
            headers = {"Accept": "application/json"}
            token = None
            if basic_auth is None:
                token = self._token_value()
                headers["Authorization"] = f"Bearer {token}"
            waited = self.limiter.acquire()
            if waited:
                with self._stats_lock:
                    self.rate_limit_wait += waited
            self._count(op)
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params or None,
                    json=json,
                    data=data,
                    headers=headers,
                    auth=basic_auth,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind = type(exc).__name__
                d = decide(
                    safe=safe, attempt=attempt, max_retries=self.max_retries, backoff=self.backoff, exc=exc
                )
                if d.outcome is Outcome.RETRY:
                    log.warning("%s %s: %s, retry %d in %.2fs", method, path, kind, attempt + 1, d.delay)
                    self._sleep(d.delay)
                    attempt += 1
                    continue
                if d.outcome is Outcome.AMBIGUOUS:
                    raise AmbiguousWriteError(
                        None,
                        f"{kind} during a create; outcome unknown, read back before retrying",
                        method,
                        path,
                    ) from None
                raise TransportError(None, f"{kind} after {attempt + 1} attempt(s)", method, path) from None

            status = resp.status_code
            if status < 400:
                if method != "GET" and basic_auth is None and not path.startswith("/ws/schema/query"):
                    with self._stats_lock:
                        self.writes_succeeded += 1
                return self._parse_body(resp)

            if status == 401 and basic_auth is None and not reauthenticated:
                # expired or revoked token: re-authenticate once and retry the call
                reauthenticated = True
                self._invalidate_token(token)
                resp.close()
                continue

            body = self._parse_body(resp)
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                d = decide(
                    safe=safe,
                    attempt=attempt,
                    max_retries=self.max_retries,
                    backoff=self.backoff,
                    status=status,
                    retry_after=retry_after,
                )
                if d.outcome is Outcome.RETRY:
                    log.warning(
                        "%s %s: HTTP %d, retry %d in %.2fs", method, path, status, attempt + 1, d.delay
                    )
                    if status == 429:
                        self.limiter.defer(d.delay)
                    self._sleep(d.delay)
                    attempt += 1
                    continue
                if d.outcome is Outcome.AMBIGUOUS:
                    raise AmbiguousWriteError(
                        status,
                        "server error during a create; outcome unknown, read back before retrying",
                        method,
                        path,
                    )
                raise error_from_response(status, body, method, path, retry_after=retry_after)
            raise error_from_response(status, body, method, path)

    def _write(self, op: str, method: str, path: str, body: Any = None) -> ContactWriteResult:
        """A contacts API write; a 200 reply with status ERROR becomes a ValidationError."""
        reply = self._call(op, method, path, json=body)
        result = shapes.read_contact_write(reply)
        if result.status.upper() == "ERROR" or result.errors:
            msg = redact_values(result.errors[0].description) if result.errors else "write refused"
            cls = (
                DuplicateError
                if any("duplicate" in (e.description or "").lower() for e in result.errors)
                else ValidationError
            )
            raise cls(400, msg, method, path, errors=result.errors)
        return result

    def _create(self, op: str, path: str, body: Any) -> int:
        result = self._write(op, "POST", path, body)
        if result.id is None:
            raise PowerSchoolError(None, "create reply carries no id", "POST", path)
        return result.id

    def _max_page_size(self, key: str) -> int | None:
        if self._metadata is None:
            try:
                self._metadata = self.metadata()
            except PowerSchoolError as exc:  # e.g. no v1 access: page without knowing the cap
                log.warning("metadata unavailable (%s); paging until an empty page", exc)
                self._metadata = {}
        value = self._metadata.get(key)
        try:
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def _page_size(self, key: str, pagesize: int | None) -> tuple[int, int | None]:
        """(rows to ask per page, the server's cap or None when unknown)."""
        cap = self._max_page_size(key)
        size = pagesize or cap or DEFAULT_PAGE_SIZE
        if cap:
            size = min(size, cap)
        return max(1, int(size)), cap

    def _paged(self, key: str, pagesize: int | None, fetch) -> Iterator[Any]:
        """Pages 1..n of ``fetch(page, pagesize)`` until a short page (or an empty one when the server's
        cap is unknown, because a capped page would look short)."""
        size, cap = self._page_size(key, pagesize)
        page = 1
        while True:
            rows = fetch(page, size)
            yield from rows
            if (cap and len(rows) < size) or not rows:
                return
            page += 1

    # ------------------------------------------------------------------------------------ metadata

    def metadata(self) -> dict[str, Any]:
        """``GET /ws/v1/metadata`` → the inner metadata dict (page-size caps and more)."""
        md = shapes.read_metadata(self._call("metadata", "GET", "/ws/v1/metadata"))
        self._metadata = md
        return md

    # ------------------------------------------------------------------------------------ students

    def iter_students(
        self,
        q: str | None = None,
        expansions: Sequence[str] | str = (),
        extensions: Sequence[str] | str = (),
        pagesize: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        params = {"q": q, "expansions": _csv(expansions), "extensions": _csv(extensions)}

        def fetch(page: int, size: int) -> list[dict[str, Any]]:
            body = self._call(
                "iter_students",
                "GET",
                "/ws/v1/district/student",
                params={**params, "page": page, "pagesize": size},
            )
            return shapes.read_students(body)

        return self._paged("student_max_page_size", pagesize, fetch)

    def count_students(self, q: str | None = None) -> int:
        return shapes.read_count(
            self._call("count_students", "GET", "/ws/v1/district/student/count", params={"q": q})
        )

    def get_student(
        self, dcid: int, expansions: Sequence[str] | str = (), extensions: Sequence[str] | str = ()
    ) -> dict[str, Any]:
        body = self._call(
            "get_student",
            "GET",
            f"/ws/v1/student/{_seg(dcid)}",
            params={"expansions": _csv(expansions), "extensions": _csv(extensions)},
        )
        return shapes.read_student(body)

    def update_students(self, records: Sequence[Mapping[str, Any]]) -> list[RecordResult]:
        """``POST /ws/v1/student`` with action UPDATE for every record (each needs ``client_uid`` and
        ``id``; the rest — ``name``, ``demographics``, ``addresses``, ``_extension_data`` … — as given).
        One result per record; a per-record failure is a result with status ERROR, not an exception."""
        if not records:
            return []
        students = []
        for i, rec in enumerate(records):
            if rec.get("id") in (None, "") or rec.get("client_uid") in (None, ""):
                raise ValueError(f"update_students: record {i} needs 'client_uid' and 'id'")
            students.append({**rec, "client_uid": str(rec["client_uid"]), "action": "UPDATE"})
        body = self._call(
            "update_students", "POST", "/ws/v1/student", json={"students": {"student": students}}
        )
        return shapes.read_v1_results(body)

    # ------------------------------------------------------------------------------------ contacts

    def get_contact(self, contact_id: int) -> dict[str, Any]:
        return self._call("get_contact", "GET", f"/ws/contacts/contact/{_seg(contact_id)}") or {}

    def get_contacts(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), _CONTACT_IDS_PER_CALL):
            chunk = ids[start : start + _CONTACT_IDS_PER_CALL]
            body = self._call(
                "get_contacts", "GET", "/ws/contacts/contacts", params={"contactids": _csv(chunk)}
            )
            out.extend(_unwrap_list(body, "contacts", "contact"))
        return out

    def contacts_for_student(self, student_dcid: int) -> list[dict[str, Any]]:
        """Contacts linked to a student (204 → ``[]``)."""
        body = self._call("contacts_for_student", "GET", f"/ws/contacts/student/{_seg(student_dcid)}")
        return _unwrap_list(body, "contacts", "contact")

    def create_contact(self, body: Mapping[str, Any]) -> int:
        """Create a person; returns the new contactId. Never retried blindly (AmbiguousWriteError)."""
        return self._create("create_contact", "/ws/contacts/contact", dict(body))

    def delete_contact(self, contact_id: int) -> None:
        self._call("delete_contact", "DELETE", f"/ws/contacts/{_seg(contact_id)}")

    def get_demographics(self, contact_id: int) -> dict[str, Any]:
        return self._call("get_demographics", "GET", f"/ws/contacts/{_seg(contact_id)}/demographics") or {}

    def put_demographics(self, contact_id: int, body: Mapping[str, Any]) -> ContactWriteResult:
        return self._write(
            "put_demographics", "PUT", f"/ws/contacts/{_seg(contact_id)}/demographics", dict(body)
        )

    # children: emails / phones / addresses

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in CHILD_KINDS:
            raise ValueError(f"kind must be one of {CHILD_KINDS}, not {kind!r}")
        return kind

    def list_children(self, contact_id: int, kind: str) -> list[dict[str, Any]]:
        body = self._call("list_children", "GET", f"/ws/contacts/{_seg(contact_id)}/{self._kind(kind)}")
        return _unwrap_list(body, kind, kind.rstrip("s") if kind != "addresses" else "address")

    def get_child(self, contact_id: int, kind: str, child_id: int) -> dict[str, Any]:
        path = f"/ws/contacts/{_seg(contact_id)}/{self._kind(kind)}/{_seg(child_id)}"
        return self._call("get_child", "GET", path) or {}

    def add_child(self, contact_id: int, kind: str, body: Mapping[str, Any]) -> int:
        return self._create("add_child", f"/ws/contacts/{_seg(contact_id)}/{self._kind(kind)}", dict(body))

    def update_child(
        self, contact_id: int, kind: str, child_id: int, body: Mapping[str, Any]
    ) -> ContactWriteResult:
        path = f"/ws/contacts/{_seg(contact_id)}/{self._kind(kind)}/{_seg(child_id)}"
        return self._write("update_child", "PUT", path, dict(body))

    def delete_child(self, contact_id: int, kind: str, child_id: int) -> None:
        self._call(
            "delete_child", "DELETE", f"/ws/contacts/{_seg(contact_id)}/{self._kind(kind)}/{_seg(child_id)}"
        )

    # student links and their details

    def list_links(self, contact_id: int) -> list[dict[str, Any]]:
        body = self._call("list_links", "GET", f"/ws/contacts/{_seg(contact_id)}/students")
        return _unwrap_list(body, "contactStudents", "students")

    def get_link(self, contact_id: int, link_id: int) -> dict[str, Any]:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}"
        return self._call("get_link", "GET", path) or {}

    def add_link(self, contact_id: int, body: Mapping[str, Any]) -> int:
        """Link a contact to a student (``dcid``, optional ``sequence``, ``studentDetails``); returns the
        studentContactId."""
        return self._create("add_link", f"/ws/contacts/{_seg(contact_id)}/students", dict(body))

    def update_link(self, contact_id: int, link_id: int, body: Mapping[str, Any]) -> ContactWriteResult:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}"
        return self._write("update_link", "PUT", path, dict(body))

    def delete_link(self, contact_id: int, link_id: int) -> None:
        self._call("delete_link", "DELETE", f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}")

    def list_details(self, contact_id: int, link_id: int) -> list[dict[str, Any]]:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}/studentdetails"
        return _unwrap_list(self._call("list_details", "GET", path), "studentDetails", "studentdetails")

    def get_detail(self, contact_id: int, link_id: int, detail_id: int) -> dict[str, Any]:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}/studentdetails/{_seg(detail_id)}"
        return self._call("get_detail", "GET", path) or {}

    def add_detail(self, contact_id: int, link_id: int, body: Mapping[str, Any]) -> int:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}/studentdetails"
        return self._create("add_detail", path, dict(body))

    def update_detail(
        self, contact_id: int, link_id: int, detail_id: int, body: Mapping[str, Any]
    ) -> ContactWriteResult:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}/studentdetails/{_seg(detail_id)}"
        return self._write("update_detail", "PUT", path, dict(body))

    def delete_detail(self, contact_id: int, link_id: int, detail_id: int) -> None:
        path = f"/ws/contacts/{_seg(contact_id)}/students/{_seg(link_id)}/studentdetails/{_seg(detail_id)}"
        self._call("delete_detail", "DELETE", path)

    # ------------------------------------------------------------------------------------ table API

    def table_metadata(self, table: str) -> dict[str, Any]:
        """``{"name": t, "columns": [{"name","type","access"}]}`` (access levels included)."""
        body = self._call(
            "table_metadata",
            "GET",
            f"/ws/schema/table/{_seg(table)}/metadata",
            params={"expansions": "access"},
        )
        if isinstance(body, dict):
            body = dict(body)
            body["columns"] = shapes.as_list(body.get("columns"))
            return body
        return {}

    def iter_table(
        self,
        table: str,
        projection: Sequence[str] | str,
        q: str | None = None,
        pagesize: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        proj = _csv(projection)
        if not proj:
            raise ValueError("iter_table: projection is required")

        def fetch(page: int, size: int) -> list[dict[str, Any]]:
            body = self._call(
                "iter_table",
                "GET",
                f"/ws/schema/table/{_seg(table)}",
                params={"projection": proj, "q": q, "page": page, "pagesize": size},
            )
            return shapes.read_table_rows(body, table)

        return self._paged("schema_table_query_max_page_size", pagesize, fetch)

    def count_table(self, table: str, q: str | None = None) -> int:
        return shapes.read_count(
            self._call("count_table", "GET", f"/ws/schema/table/{_seg(table)}/count", params={"q": q})
        )

    def get_row(self, table: str, row_id: int, projection: Sequence[str] | str = "*") -> dict[str, Any]:
        body = self._call(
            "get_row",
            "GET",
            f"/ws/schema/table/{_seg(table)}/{_seg(row_id)}",
            params={"projection": _csv(projection)},
        )
        return shapes.read_table_row(body, table)

    def insert_row(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert a row; returns its id. Never retried blindly (AmbiguousWriteError)."""
        path = f"/ws/schema/table/{_seg(table)}"
        reply = self._call(
            "insert_row", "POST", path, json={"tables": {table.lower(): shapes.encode_table_values(values)}}
        )
        _raise_record_errors(reply, "POST", path)
        new_id = shapes.read_created_id(reply)
        if new_id is None:
            raise PowerSchoolError(None, "insert reply carries no id", "POST", path)
        return new_id

    def update_row(self, table: str, row_id: int, values: Mapping[str, Any]) -> Any:
        path = f"/ws/schema/table/{_seg(table)}/{_seg(row_id)}"
        body = {
            "id": row_id,
            "name": table.lower(),
            "tables": {table.lower(): shapes.encode_table_values(values)},
        }
        reply = self._call("update_row", "PUT", path, json=body)
        _raise_record_errors(reply, "PUT", path)
        return reply

    def delete_row(self, table: str, row_id: int) -> None:
        self._call("delete_row", "DELETE", f"/ws/schema/table/{_seg(table)}/{_seg(row_id)}")

    # ------------------------------------------------------------------------------------ PowerQueries

    def iter_powerquery(
        self, name: str, args: Mapping[str, Any] | None = None, pagesize: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Rows of a named PowerQuery (keyed ``table.column``), page by page."""
        path = f"/ws/schema/query/{_seg(name)}"
        payload = dict(args or {})

        def fetch(page: int, size: int) -> list[dict[str, Any]]:
            body = self._call(
                "iter_powerquery", "POST", path, params={"page": page, "pagesize": size}, json=payload
            )
            return shapes.read_powerquery_rows(body)

        return self._paged("schema_table_query_max_page_size", pagesize, fetch)

    def powerquery_pages_from_end(
        self, name: str, args: Mapping[str, Any] | None = None, pagesize: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a named PowerQuery from the last to the first, each in the query's order: for a query
        ordered by id, the newest rows come first and a reader stops when it has gone far enough back.
        Costs a count, then one call per page read. Without the server's page cap the page boundaries are
        unknown, so then every row is read forward and given as one page."""
        size, cap = self._page_size("schema_table_query_max_page_size", pagesize)
        if not cap:
            yield list(self.iter_powerquery(name, args, pagesize))
            return
        path = f"/ws/schema/query/{_seg(name)}"
        for page in range((self.count_powerquery(name, args) + size - 1) // size, 0, -1):
            body = self._call("powerquery_page", "POST", path, params={"page": page, "pagesize": size},
                              json=dict(args or {}))
            yield shapes.read_powerquery_rows(body)

    def count_powerquery(self, name: str, args: Mapping[str, Any] | None = None) -> int:
        body = self._call(
            "count_powerquery", "POST", f"/ws/schema/query/{_seg(name)}/count", json=dict(args or {})
        )
        return shapes.read_count(body)

    def list_powerqueries(self) -> list[dict[str, Any]]:
        """The named queries the plugin may run (each a dict with at least ``name``)."""
        body = self._call("list_powerqueries", "GET", "/ws/schema/query/api")
        items = _unwrap_list(body, "queries", "query")
        return [i if isinstance(i, dict) else {"name": str(i)} for i in items]


def _unwrap_list(body: Any, *keys: str) -> list[Any]:
    """A list reply that may be a bare array, a bare object, ``None`` (204) or wrapped under one or two
    of ``keys`` (e.g. ``{"contacts": {"contact": [...]}}``)."""
    if body is None:
        return []
    for _ in range(2):
        if isinstance(body, Mapping):
            for k in keys:
                if k in body:
                    body = body[k]
                    break
            else:
                break
    return shapes.as_list(body)


def _raise_record_errors(reply: Any, method: str, path: str) -> None:
    """Table API writes answer like v1 batches; a record with status ERROR raises ValidationError."""
    for r in shapes.read_v1_results(reply):
        if not r.ok and r.status:
            msg = r.errors[0].description if r.errors else "write refused"
            raise ValidationError(400, msg, method, path, errors=r.errors)

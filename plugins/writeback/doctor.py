"""`writeback doctor`: check a district's PowerSchool server against what its mappings need (every form's:
the checks cover the union of their targets).

Checks, in this order of output (each OK or FAIL with a precise fix; SKIP when a check cannot run):

1. **credentials** — the OAuth client-credentials token is issued;
2. **accessLevelV1Api** — ``GET /ws/v1/metadata`` answers (READ), and when the mapping writes student
   fields, ``POST /ws/v1/student`` with an *empty* batch passes the access check (FULL; nothing is written);
3. **plugin grants** — every snapshot PowerQuery the mapping uses runs (first page, ``pagesize=1``); the
   extension tables' ``/metadata?expansions=access`` shows the access each needed column has; the contacts
   resources the applier writes are probed with a ``PUT`` to contact id 0 (which cannot exist: the server
   answers 404 after the grant check, or 403 naming the columns that lack FullAccess). Every missing
   ``(table, field)`` from the documented 403 bodies is collected and printed as the exact
   ``<field .../>`` lines to add to plugin.xml;
4. **code sets** — every code the mapping makes the writeback send (the values of the code maps on
   relationships and states, the phone types it maps, the email and address types the applier writes, a
   new link's default relationship) is in the district's CodeSet (read with the plugin's named query
   ``com.writeback.codesets``, codes in effect today); each missing one is named with the place that emits it;
5. **page sizes** — the server's ``student_max_page_size`` / ``schema_table_query_max_page_size`` against
   the page size the client asks for;
6. **throttle** — a few quick requests (run first, so the other checks can be paced): on a 429 the
   ``Retry-After`` gives the server's minimum interval and a ``requests_per_second`` for the connection.

Nothing here prints the client secret or the token: messages come from the client's typed errors, which
carry method and path only.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .domain.codes import code_sets_from_rows, emitted_codes, missing_codes, unchecked_code_fields
from .domain.routing import union
from .powerschool.client import DEFAULT_PAGE_SIZE, PowerSchoolClient
from .powerschool.errors import (
    AuthError,
    NotAllowed,
    NotFound,
    PermissionDenied,
    PowerSchoolError,
    RateLimited,
    ValidationError,
)
from .powerschool.grants import (
    CODESET_QUERY,
    CONTACT_WRITE_TABLES,
    FULL_ACCESS,
    VIEW_ONLY,
    Mappings,
    Need,
    contact_resources,
    field_line,
    grant_needs,
    reference_queries,
    snapshot_queries,
    v1_access_needed,
)
from .powerschool.retry import RateLimiter

__all__ = ["Check", "DoctorReport", "run_doctor", "cli_doctor", "OK", "FAIL", "SKIP"]

OK, FAIL, SKIP = "OK", "FAIL", "SKIP"
CHECK_ORDER = ("credentials", "accessLevelV1Api", "plugin grants", "code sets", "page sizes", "throttle")
_RANK = {"NoAccess": 0, VIEW_ONLY: 1, FULL_ACCESS: 2}
PLUGIN_UPDATE = ("then bump the plugin's version, zip it and install it again (System > System Settings > "
                 "Plugin Management Configuration > Install), and make sure the plugin stays enabled")

# A PUT on a resource of contact id 0 (ids start at 1): the server checks the grants of the tables behind
# the resource, then answers 404. Nothing can be written.
_WRITE_PROBES: dict[str, tuple[str, str]] = {
    "person": ("put_demographics", "PUT /ws/contacts/{id}/demographics"),
    "emails": ("update_child", "PUT /ws/contacts/{id}/emails/{emailId}"),
    "phones": ("update_child", "PUT /ws/contacts/{id}/phones/{phoneId}"),
    "addresses": ("update_child", "PUT /ws/contacts/{id}/addresses/{addressId}"),
    "students": ("update_link", "PUT /ws/contacts/{id}/students/{studentContactId}"),
    "studentdetails": ("update_detail", "PUT /ws/contacts/{id}/students/{studentContactId}/studentdetails/{detailId}"),
}


@dataclass
class Check:
    name: str
    status: str  # OK | FAIL | SKIP
    summary: str
    details: list[str] = field(default_factory=list)  # facts, one per line
    fix: list[str] = field(default_factory=list)  # what to do, one per line


@dataclass
class DoctorReport:
    base_url: str
    client_id: str
    mapping: str
    checks: list[Check] = field(default_factory=list)
    missing_grants: list[Need] = field(default_factory=list)  # with the access each needs
    v1_level_needed: str = "READ"
    v1_level_missing: str | None = None  # the level the plugin lacks ("READ" or "FULL"), when it does
    retry_after: float | None = None  # the server's throttle answer, when it throttled
    suggested_requests_per_second: float | None = None

    @property
    def ok(self) -> bool:
        return all(c.status == OK for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def render(self) -> str:
        lines = [f"writeback doctor: {self.base_url} (client id {self.client_id!r}), mapping {self.mapping}"]
        width = max(len(n) for n in CHECK_ORDER)
        for c in self.checks:
            lines.append(f"[{c.status}]{' ' * (5 - len(c.status))}{c.name:<{width}}  {c.summary}")
            lines.extend(f"       {d}" for d in c.details)
            for i, f in enumerate(c.fix):
                lines.append(f"       {'fix: ' if i == 0 else '     '}{f}")
        failed = [c.name for c in self.checks if c.status != OK]
        if not failed:
            lines.append("All checks OK.")
        else:
            lines.append(f"{len(failed)} check(s) not OK: {', '.join(failed)}.")
            if self.missing_grants or self.v1_level_missing:
                lines.append("An update to your PowerSchool plugin is required: apply the plugin.xml changes above "
                             "(or regenerate it with `writeback plugin-xml <mapping>`).")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------- checks


def _credentials(client: PowerSchoolClient) -> Check:
    try:
        client._token_value()  # the client's own token fetch; the token itself is never shown
    except AuthError as exc:
        return Check("credentials", FAIL, f"the server refused client id {client.client_id!r} (HTTP {exc.status})",
                     details=[f"POST /oauth/access_token: {exc.message}"],
                     fix=["copy the client ID and client secret from the plugin's page (System > System Settings > "
                          "Plugin Management Configuration > <plugin> > Data Configuration) into the PowerSchool "
                          "connection's login and password; make sure the plugin is enabled"])
    except PowerSchoolError as exc:
        return Check("credentials", FAIL, f"no token: {exc}",
                     fix=["check the connection's host, port and scheme, and that this machine can reach the "
                          "PowerSchool server"])
    return Check("credentials", OK, f"token issued for client id {client.client_id!r}")


def _is_level_error(exc: PowerSchoolError) -> bool:
    return isinstance(exc, AuthError) and "accesslevelv1api" in exc.message.lower()


def _v1_level(client: PowerSchoolClient, needed: str, report: DoctorReport) -> tuple[Check, dict[str, Any] | None]:
    fix_line = f'in plugin.xml set <oauth accessLevelV1Api="{needed}"/>, {PLUGIN_UPDATE}'
    try:
        md = client.metadata()
    except PowerSchoolError as exc:
        if _is_level_error(exc):
            report.v1_level_missing = needed
            return Check("accessLevelV1Api", FAIL,
                         f"the plugin has no /ws/v1 access; missing level: {needed} (needs {needed})",
                         details=[f"GET /ws/v1/metadata: HTTP {exc.status}: {exc.message}"], fix=[fix_line]), None
        return Check("accessLevelV1Api", FAIL, f"GET /ws/v1/metadata failed: {exc}",
                     fix=["see the error above; the metadata call must succeed"]), None
    if needed != "FULL":
        return Check("accessLevelV1Api", OK, "READ or better (GET /ws/v1/metadata answered); the mapping "
                                             "writes no student fields, READ is enough"), md
    try:  # an empty batch: passes or fails the access check, writes nothing
        client._call("v1_write_probe", "POST", "/ws/v1/student", json={"students": {"student": []}})
    except ValidationError:
        pass  # 400 for the empty batch: the access check passed
    except PowerSchoolError as exc:
        if _is_level_error(exc):
            report.v1_level_missing = "FULL"
            return Check("accessLevelV1Api", FAIL,
                         f"the plugin has READ; missing level: FULL (mapping {report.mapping} writes student fields "
                         "through POST /ws/v1/student)",
                         details=[f"POST /ws/v1/student (empty batch): HTTP {exc.status}: {exc.message}"],
                         fix=[fix_line]), md
        return Check("accessLevelV1Api", FAIL, f"POST /ws/v1/student (empty batch) failed: {exc}",
                     fix=["see the error above"]), md
    return Check("accessLevelV1Api", OK, "FULL (metadata read; POST /ws/v1/student passed the access check "
                                         "with an empty batch, nothing written)"), md


def _grants(client: PowerSchoolClient, mapping: Mappings, report: DoctorReport) -> Check:
    needs = {(n.table, n.field): n for n in grant_needs(mapping)}
    missing: dict[tuple[str, str], str] = {}  # (table, field) -> access needed
    failed_calls: list[str] = []
    problems: list[str] = []
    notes: list[str] = []

    def lacking(pairs: list[tuple[str, str]], fallback: str, where: str) -> None:
        for pair in pairs:
            need = needs.get(pair)
            access = need.access if need else fallback
            if _RANK[access] > _RANK.get(missing.get(pair, "NoAccess"), 0):
                missing[pair] = access
        if where not in failed_calls:
            failed_calls.append(where)

    # 1. reads: each snapshot (and reference) PowerQuery, first page of one row
    for query in [*snapshot_queries(mapping), *reference_queries(mapping)]:
        try:
            next(iter(client.iter_powerquery(query, pagesize=1)), None)
        except PermissionDenied as exc:
            lacking(exc.missing, VIEW_ONLY, f"PowerQuery {query}")
            if not exc.missing:
                problems.append(f"PowerQuery {query}: HTTP 403 without the missing fields: {exc.message}")
        except NotFound:
            problems.append(f"PowerQuery {query} is not installed on the server (404): the plugin must ship "
                            "the writeback's named queries")
        except PowerSchoolError as exc:
            problems.append(f"PowerQuery {query}: {exc}")

    # 2. extension tables: the access each needed column really has
    ext_tables = sorted({t for t, _ in needs if t.startswith(("u_", "s_"))})
    for table in ext_tables:
        try:
            meta = client.table_metadata(table)
        except PermissionDenied as exc:
            lacking(exc.missing, VIEW_ONLY, f"GET /ws/schema/table/{table}/metadata")
            continue
        except NotFound:
            problems.append(f"extension table {table} does not exist on the server (404); the mapping targets "
                            f"{', '.join(sorted(f for t, f in needs if t == table))}")
            continue
        except NotAllowed:
            notes.append(f"{table}: the table API refuses it (405); its grants were checked by the PowerQueries only")
            continue
        except PowerSchoolError as exc:
            problems.append(f"GET /ws/schema/table/{table}/metadata: {exc}")
            continue
        access = {str(c.get("name", "")).lower(): str(c.get("access") or "") for c in meta.get("columns", [])
                  if isinstance(c, dict)}
        short: list[tuple[str, str]] = []
        for (t, col), need in needs.items():
            if t != table:
                continue
            if col not in access:
                problems.append(f"{table}.{col} is not a column of {table} on the server (its metadata lists "
                                f"{len(access)} columns)")
            elif access[col] and _RANK.get(access[col], 0) < _RANK[need.access]:
                short.append((t, col))
        if short:
            lacking(short, FULL_ACCESS, f"GET /ws/schema/table/{table}/metadata?expansions=access")

    # 3. contacts writes: a PUT on contact id 0 is refused by the grant check (403) or answered 404
    probed: set[str] = set()
    for resource in contact_resources(mapping):
        tables = set(CONTACT_WRITE_TABLES[resource])
        if tables <= probed:
            continue  # e.g. studentdetails: its table was checked with the student links
        probed |= tables
        method, label = _WRITE_PROBES[resource]
        try:
            if method == "put_demographics":
                client.put_demographics(0, {})
            elif method == "update_child":
                client.update_child(0, resource, 0, {})
            elif method == "update_link":
                client.update_link(0, 0, {})
            else:
                client.update_detail(0, 0, 0, {})
        except PermissionDenied as exc:
            lacking(exc.missing, FULL_ACCESS, label)
            if not exc.missing:
                problems.append(f"{label}: HTTP 403 without the missing fields: {exc.message}")
        except (NotFound, ValidationError):
            pass  # passed the grant check
        except PowerSchoolError as exc:
            problems.append(f"{label} (write-grant probe on contact id 0): {exc}")

    students_via_v1 = sorted(f"students.{f}" for (t, f), n in needs.items() if t == "students" and n.access == FULL_ACCESS)
    if students_via_v1:
        notes.append(f"FullAccess on {len(students_via_v1)} students column(s) is needed for the /ws/v1 writes; "
                     "PowerSchool does not field-check /ws/v1, so only read access is verified for them")

    report.missing_grants = [Need(t, f, a, list(needs[(t, f)].why) if (t, f) in needs else [])
                             for (t, f), a in sorted(missing.items())]
    if not missing and not problems:
        n_read = sum(1 for n in needs.values() if n.access == VIEW_ONLY)
        n_write = len(needs) - n_read
        return Check("plugin grants", OK,
                     f"all {len(needs)} field grants present ({n_write} FullAccess, {n_read} ViewOnly); "
                     f"{len(snapshot_queries(mapping)) + len(reference_queries(mapping))} PowerQueries ran",
                     details=notes)
    details = [f"found by: {', '.join(failed_calls)}"] if failed_calls else []
    details += problems + notes
    fix: list[str] = []
    if missing:
        fix.append("add these lines inside <access_request> in plugin.xml (replace a ViewOnly line for the same "
                   f"field), {PLUGIN_UPDATE}:")
        fix.extend(f"  {field_line(n)}" for n in report.missing_grants)
    if problems and not missing:
        fix.append("see the problems above")
    summary = (f"{len(missing)} field grant(s) missing" if missing else "grants could not all be checked")
    if missing and problems:
        summary += f"; {len(problems)} other problem(s)"
    return Check("plugin grants", FAIL, summary, details=details, fix=fix)


def _code_sets(client: PowerSchoolClient, mapping: Mappings, today: dt.date) -> Check:
    emitted = emitted_codes(mapping)
    if not emitted:
        return Check("code sets", OK, "the mapping sends no codes (it maps no contacts)")
    try:
        rows = list(client.iter_powerquery(CODESET_QUERY))
    except PermissionDenied as exc:
        return Check("code sets", FAIL, f"cannot read the code sets: PowerQuery {CODESET_QUERY} answered 403",
                     details=[exc.message], fix=["grant the codeset fields listed under plugin grants"])
    except NotFound:
        return Check("code sets", FAIL, f"PowerQuery {CODESET_QUERY} is not installed on the server (404)",
                     fix=["install the plugin that ships the writeback's named queries (see docs/operations.md)"])
    except PowerSchoolError as exc:
        return Check("code sets", FAIL, f"PowerQuery {CODESET_QUERY} failed: {exc}", fix=["see the error above"])
    sets = code_sets_from_rows(rows, today)
    missing = missing_codes(emitted, sets)
    notes = [f"{n}: PowerSchool refuses a value its code set lacks when that record is written"
             for n in unchecked_code_fields(mapping)]
    if not missing:
        types = sorted({e.code_type.value for e in emitted})
        return Check("code sets", OK, f"all {len({(e.code_type, e.code) for e in emitted})} codes the mapping sends "
                                      f"are in the district's code sets ({', '.join(types)})", details=notes)
    details = []
    for m in missing:
        e = m.emitted
        have = sorted(sets.get(e.code_type.lower(), set()))
        shown = ", ".join(have[:12]) + (", ..." if len(have) > 12 else "") if have else "none"
        hint = f"; did you mean {m.near!r}?" if m.near else ""
        details.append(f"{e.code_type.value} {e.code!r} is not in the district's {e.code_type.value} code set "
                       f"(from {e.where}){hint}; the set has: {shown}")
    details += notes
    codes = sorted({(m.emitted.code_type.value, m.emitted.code) for m in missing})
    return Check("code sets", FAIL, f"{len(codes)} code(s) the mapping sends are missing from the district's code "
                                    "sets: " + ", ".join(f"{t} {c!r}" for t, c in codes), details=details,
                 fix=["change the mapping to send a code the set has, or add the code in PowerSchool (District "
                      "Setup > Code Sets); PowerSchool refuses a contact write with an unknown code"])


def _page_sizes(md: dict[str, Any] | None) -> Check:
    if md is None:
        return Check("page sizes", FAIL, "GET /ws/v1/metadata is unavailable, so the client cannot learn the "
                                         "server's page caps and pages until an empty page (one extra call per "
                                         "listing)", fix=['give the plugin /ws/v1 access (<oauth accessLevelV1Api='
                                                          '"READ"/> at least)'])
    facts, notes = [], []
    for key in ("student_max_page_size", "schema_table_query_max_page_size"):
        raw = md.get(key)
        try:
            cap = int(raw) if raw not in (None, "") else None
        except (TypeError, ValueError):
            cap = None
        if cap is None or cap <= 0:
            facts.append(f"{key}=?")
            notes.append(f"{key} missing from metadata: the client pages until an empty page (one extra call "
                         "per listing)")
            continue
        used = min(DEFAULT_PAGE_SIZE, cap)
        facts.append(f"{key}={cap}")
        if cap < DEFAULT_PAGE_SIZE:
            notes.append(f"{key}={cap} is below the client's page size {DEFAULT_PAGE_SIZE}: the client uses {used} "
                         f"rows per call (a snapshot costs {DEFAULT_PAGE_SIZE / cap:.1f}x the calls); a PowerSchool "
                         "admin can raise the API's maximum page size")
    return Check("page sizes", OK, f"{', '.join(facts)}; the client asks for {DEFAULT_PAGE_SIZE} rows per page "
                                   "and keeps to the server's cap", details=notes)


@dataclass
class _Throttle:
    check: Check
    interval: float | None = None  # seconds between requests the server asks for (upper bound)


def _retry_after_of(exc: RateLimited) -> float:
    if exc.retry_after is not None:
        return float(exc.retry_after)
    m = re.search(r"wait\s+(\d+(?:\.\d+)?)\s*second", exc.message or "")
    return float(m.group(1)) if m else 1.0


def _floor2(x: float) -> float:
    return math.floor(x * 100) / 100 if x >= 0.01 else math.floor(x * 1000) / 1000


class _Prober:
    """Sends one cheap ``/ws`` request at a time (``GET /ws/schema/query/api``) with the client's limiter and
    retries off, and remembers when the server last accepted one."""

    def __init__(self, client: PowerSchoolClient):
        self.client = client
        self.last_accepted: float | None = None
        self.accepted = 0

    def send(self, not_before: float | None = None) -> RateLimited | None:
        """The 429 when the server throttled the request, else None."""
        if not_before is not None:
            time.sleep(max(0.0, not_before - time.monotonic()))
        sent = time.monotonic()
        try:
            self.client.list_powerqueries()
        except RateLimited as exc:
            return exc
        except PowerSchoolError:
            pass  # the throttle let it through; what it answered is for the other checks
        self.last_accepted = sent
        self.accepted += 1
        return None


def _throttle(client: PowerSchoolClient, report: DoctorReport, configured_rps: float | None, conn_id: str | None,
              probes: int) -> _Throttle:
    """Quick requests until the server throttles (or ``probes`` pass). On a 429: check the configured rate by
    pacing two requests at it; otherwise narrow the server's interval down (Retry-After is rounded up to whole
    seconds) and suggest a ``requests_per_second`` that keeps to it."""
    saved = client.limiter, client.max_retries
    client.limiter, client.max_retries = RateLimiter(None), 0
    probe = _Prober(client)
    start = time.monotonic()
    try:
        refused: RateLimited | None = None
        since = 0.0
        for _ in range(probes):
            sent = time.monotonic()
            refused = probe.send()
            if refused is not None:
                since = sent - probe.last_accepted if probe.last_accepted is not None else 0.0
                break
        if refused is None:
            took = time.monotonic() - start
            rate = f"{probe.accepted / took:.0f} requests/s" if took > 0 else "at once"
            return _Throttle(Check("throttle", OK, f"{probe.accepted} quick requests accepted ({rate}); no throttling "
                                   "seen" + (f"; requests_per_second={configured_rps:g} set" if configured_rps else "")))
        retry_after = _retry_after_of(refused)
        details = [f"request {probe.accepted + 1} came {since * 1000:.0f} ms after the previous accepted one and got "
                   f"HTTP 429, Retry-After: {retry_after:g} ({refused.message})"]
        report.retry_after = retry_after
        if configured_rps:
            gap = 1.0 / configured_rps
            if all(probe.send(probe.last_accepted + gap) is None for _ in range(2)):
                return _Throttle(Check("throttle", OK, f"the server throttles (Retry-After {retry_after:g} s); "
                                                       f"requests_per_second={configured_rps:g} keeps to it "
                                                       f"(2 requests {gap:.2f} s apart accepted)",
                                       details=details), gap)
        # the interval is in (lo, hi]: Retry-After is the remaining wait rounded up to whole seconds
        lo, hi = max(0.0, since + retry_after - 1), since + retry_after
        for _ in range(3 if retry_after <= 5 else 0):
            mid = (lo + hi) / 2
            if probe.send(probe.last_accepted + mid) is None:
                hi = mid
            else:
                lo = mid
        interval = hi * 1.05  # a little slack for network jitter
        suggested = _floor2(1.0 / interval)
        report.suggested_requests_per_second = suggested
        details.append(f"minimum interval between requests: between {lo:.2f} s and {hi:.2f} s")
        where = f"Airflow connection {conn_id!r}" if conn_id else "the PowerSchool connection"
        have = (f"requests_per_second={configured_rps:g} is too fast (a request {1 / configured_rps:.2f} s after the "
                "previous one got 429)" if configured_rps
                else "no requests_per_second is set, so calls hit 429 and wait for Retry-After")
        return _Throttle(Check("throttle", FAIL, f"the server throttles: Retry-After {retry_after:g} s; suggested "
                                                 f"requests_per_second: {suggested:g}", details=[*details, have],
                               fix=[f'set "requests_per_second": {suggested:g} in the extras of {where}']),
                         1.0 / suggested)
    finally:
        client.limiter, client.max_retries = saved


# ------------------------------------------------------------------------------------------- run


def run_doctor(client: PowerSchoolClient, mapping: Mappings, *, conn_id: str | None = None,
               configured_rps: float | None = None, throttle_probes: int = 5,
               today: dt.date | None = None) -> DoctorReport:
    """Run every check against ``client``'s server for ``mapping``; the report says what to fix."""
    names = ", ".join(m.name for m in union(mapping))
    report = DoctorReport(client.base_url, client.client_id, names, v1_level_needed=v1_access_needed(mapping))
    if configured_rps is None and client.limiter.interval:
        configured_rps = 1.0 / client.limiter.interval
    creds = _credentials(client)
    if creds.status != OK:
        report.checks = [creds] + [Check(n, SKIP, "not checked: no token") for n in CHECK_ORDER[1:]]
        return report
    saved_limiter = client.limiter
    try:
        throttle = _throttle(client, report, configured_rps, conn_id, throttle_probes)
        if throttle.interval:  # pace the remaining checks so they do not hit 429 themselves
            client.limiter = RateLimiter(1.0 / throttle.interval)
            client.limiter.defer(throttle.interval)
        v1, md = _v1_level(client, report.v1_level_needed, report)
        grants = _grants(client, mapping, report)
        codes = _code_sets(client, mapping, today or dt.date.today())
        pages = _page_sizes(md)
    finally:
        client.limiter = saved_limiter
    report.checks = [creds, v1, grants, codes, pages, throttle.check]
    return report


# ------------------------------------------------------------------------------------------- command line


def cli_doctor(args: Any) -> int:
    """`writeback doctor (--district NAME | --base-url URL --client-id ID) [--mapping FILE]`."""
    import os
    import sys

    from .domain.mapping import MappingError, load_mapping

    conn_id = None
    try:
        if args.district:
            from .config import district

            try:
                config = district(args.district)
            except KeyError as exc:
                print(f"error: {exc.args[0]}", file=sys.stderr)
                return 2
            mapping = [load_mapping(p) for p in args.mapping] if args.mapping else config.load_forms().mappings
            conn_id = config.powerschool_conn_id
            from .hooks.powerschool import PowerSchoolHook

            try:
                client = PowerSchoolHook(conn_id).get_conn()
            except Exception as exc:  # a missing/invalid Airflow connection; messages carry no secret
                print(f"error: cannot build the PowerSchool client from Airflow connection {conn_id!r}: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
                return 2
        else:
            secret = os.environ.get("POWERSCHOOL_CLIENT_SECRET", "")
            if not (args.base_url and args.client_id and secret and args.mapping):
                print("error: give --district NAME, or --base-url URL --client-id ID --mapping FILE with the client "
                      "secret in the environment variable POWERSCHOOL_CLIENT_SECRET", file=sys.stderr)
                return 2
            mapping = [load_mapping(p) for p in args.mapping]
            client = PowerSchoolClient(args.base_url, args.client_id, secret, max_retries=2,
                                       requests_per_second=args.requests_per_second)
    except MappingError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    with client:
        report = run_doctor(client, mapping, conn_id=conn_id)
    print(report.render())
    return report.exit_code

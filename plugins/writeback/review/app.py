"""The review web app: server-rendered pages for registrars and a JSON API under `/api/v1`.

Mounted into the Airflow API server by `writeback.plugin` at `/writeback`; every route
authenticates with Airflow's auth manager (see `auth.py`) and authorises against the run's DAG.
"""


import datetime as dt
import math
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from ..store import DecisionConflict, InvalidDecision, ItemNotFound, Store, StoreError
from ..store.locate import DistrictStores
from ..store.schema import Run
from . import view
from .auth import CSRF_FIELD, CSRF_HEADER, AirflowAuth, Auth, Principal, csrf_token, csrf_valid, dag_id_for

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 25
MOUNT_PREFIX = "/writeback"


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)
    comment: str = Field("", max_length=2000)
    version: int = Field(ge=1)


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end_date: dt.date | None = None  # for contact removals; default today
    comment: str = Field("", max_length=2000)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order: list[str] = Field(min_length=1, max_length=100)


class ValuesIn(BaseModel):
    """Per-value choices: value ref -> choice (`update`, `keep_and_add`, `do_not_update`, `add`, `remove`,
    `keep`, as the value offers). A ref left out keeps what the plan proposes."""

    model_config = ConfigDict(extra="forbid")

    choices: dict[str, str] = Field(max_length=500)


def _plan_snapshot(store, run_id: str):
    """The part of the run's snapshot its plan touches (the whole district's only for older runs)."""
    return view.load_snapshot(store.get_data(run_id, "snapshot_plan") or store.get_data(run_id, "snapshot"))


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _check_data(choice: str, data: dict[str, Any]) -> dict[str, Any]:
    """Decision data is small and known: an expiry needs an ISO end date; nothing else takes data."""
    if choice == "expire":
        raw = data.get("end_date")
        try:
            end = dt.date.fromisoformat(str(raw))
        except (TypeError, ValueError):
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                f"expire needs data.end_date as YYYY-MM-DD (got {raw!r})") from None
        extra = set(data) - {"end_date"}
        if extra:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown decision data: {', '.join(sorted(extra))}")
        return {"end_date": end.isoformat()}
    if data:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{choice!r} takes no data (got {', '.join(sorted(data))})")
    return {}


def create_app(store_factory: Callable[[], Store] | None = None, auth: Auth | None = None, *,
               mount_prefix: str = MOUNT_PREFIX,
               preview_clients: Callable[[Any], tuple[Any, Any]] | None = None) -> FastAPI:
    """The review app. `store_factory` is called once, on first use; `auth` defaults to Airflow's auth manager;
    `preview_clients(district config)` gives the preview page its (SchoolEngage, PowerSchool) clients
    (default: from the district's Airflow connections)."""
    auth = auth or AirflowAuth()
    # by default every district's store: a run is read from and decided in its own district's store
    factory = store_factory or DistrictStores
    lock = threading.Lock()
    holder: dict[str, Store] = {}

    def get_store() -> Store:
        if "store" not in holder:
            with lock:
                if "store" not in holder:
                    holder["store"] = factory()
        return holder["store"]

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = lambda s: quote(str(s), safe="")
    env.globals["choice_label"] = view.choice_label
    env.globals["kind_labels"] = view.KIND_LABELS

    app = FastAPI(title="Writeback review", version="1", docs_url="/api/v1/docs", redoc_url=None,
                  openapi_url="/api/v1/openapi.json")
    app.state.get_store = get_store
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # ------------------------------------------------------------ helpers

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def airflow_base(request: Request) -> str:
        root = base(request)
        return root[: -len(mount_prefix)] if mount_prefix and root.endswith(mount_prefix) else ""

    def run_url(request: Request, run_id: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "") and not (k == "page" and v == 1)}
        return f"{base(request)}/runs/{quote(run_id, safe='')}" + (f"?{urlencode(query)}" if query else "")

    def is_api(request: Request) -> bool:
        return "/api/v1/" in request.url.path

    async def principal(request: Request) -> Principal:
        return await auth.authenticate(request)

    Who = Annotated[Principal, Depends(principal)]

    def load_run(who: Principal, run_id: str, method: str = "GET") -> Run:
        store = get_store()
        try:
            run = store.get_run(run_id)
        except StoreError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r}") from None
        dag_id = dag_id_for(run.district)
        if not auth.is_authorized(who, dag_id, "GET"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{who.username} may not read DAG {dag_id}")
        if method == "PUT":
            if not auth.is_authorized(who, dag_id, "PUT"):
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"{who.username} may not decide runs of {dag_id} (needs edit access to the DAG)")
            if run.approved_hash:
                raise HTTPException(status.HTTP_409_CONFLICT,
                                    f"run {run_id} is already approved; a change now would not be applied")
        return run

    def check_csrf(request: Request, who: Principal, token: str | None = None) -> None:
        """Browser (cookie) requests must prove they come from our page; Bearer API calls are exempt."""
        if who.via == "bearer":
            return
        token = token or request.headers.get(CSRF_HEADER)
        if not csrf_valid(auth.secret(), who.username, token):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or invalid; reload the page")

    def decide(run: Run, key: str, body: DecisionIn, who: Principal) -> dict[str, Any]:
        store = get_store()
        data = _check_data(body.choice, body.data)
        try:
            row = store.decide(run.id, key, body.choice, user=who.username, data=data, comment=body.comment,
                               expected_version=body.version)
        except ItemNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except InvalidDecision as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except DecisionConflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        return view.item_json(row)

    def bulk_safe(run: Run, who: Principal, end_date: dt.date | None, comment: str = "") -> dict[str, Any]:
        store = get_store()
        end = (end_date or _today()).isoformat()
        decided: Counter[str] = Counter()
        conflicts = 0
        for row in store.items(run.id, state="pending"):
            choice = view.SAFE_CHOICES.get(row.kind)
            if choice is None or choice not in (row.options or []):
                continue
            data = {"end_date": end} if choice == "expire" else {}
            try:
                store.decide(run.id, row.item_key, choice, user=who.username, data=data,
                             comment=comment or "bulk: approve everything safe", expected_version=row.version)
                decided[row.kind] += 1
            except DecisionConflict:
                conflicts += 1  # someone decided it meanwhile: theirs stands
        return {"decided": sum(decided.values()), "by_kind": dict(decided), "conflicts": conflicts,
                "pending": store.pending_count(run.id)}

    def student_plan(run: Run, student_number: str):
        plan = view.load_plan(get_store().get_data(run.id, "plan"))
        sp = next((s for s in (plan.students if plan else []) if s.student_number == student_number), None)
        if sp is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run.id} has no student {student_number!r}")
        return sp

    def save_order(run: Run, student_number: str, order: list[str], who: Principal) -> dict[str, Any]:
        sp = student_plan(run, student_number)
        known = view.orderable_refs(sp)
        unknown = [r for r in order if r not in known]
        if unknown:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                f"not contacts of student {student_number}: {', '.join(unknown)}")
        if len(set(order)) != len(order):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "a contact appears twice in the order")
        full = order + [r for r in known if r not in order]
        store = get_store()
        kind = f"order:{student_number}"
        doc = view.order_document(sp, full, who.username, store.get_data(run.id, kind))
        store.put_data(run.id, kind, doc)
        return doc

    def save_values(run: Run, student_number: str, choices: dict[str, str], who: Principal) -> dict[str, Any]:
        sp = student_plan(run, student_number)
        store = get_store()
        snapshot = _plan_snapshot(store, run.id)
        problems, choices = view.checked_value_choices(sp, snapshot, choices)
        if problems:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "; ".join(problems))
        kind = f"values:{student_number}"
        doc = view.values_document(sp, choices, who.username, store.get_data(run.id, kind))
        store.put_data(run.id, kind, doc)
        return doc

    def readable_runs(who: Principal) -> list[Run]:
        return [r for r in get_store().list_runs(limit=200)
                if auth.is_authorized(who, dag_id_for(r.district), "GET")]

    def summary(run: Run) -> dict[str, Any]:
        store = get_store()
        return view.run_json(run, store.items(run.id), store.quarantine(run.id))

    def render(name: str, request: Request, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(request=request, base=base(request), **ctx)
        return HTMLResponse(html, status_code=status_code)

    # ------------------------------------------------------------ errors

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        login = auth.login_url(str(request.url)) if exc.status_code == 401 else None
        return render("error.html", request, status_code=exc.status_code, status=exc.status_code,
                      detail=exc.detail, login_url=login)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    # ------------------------------------------------------------ JSON API

    api = APIRouter(prefix="/api/v1")

    @api.get("/runs")
    def api_runs(who: Who) -> dict[str, Any]:
        return {"runs": [summary(r) for r in readable_runs(who)], "user": who.username}

    @api.get("/runs/{run_id}")
    def api_run(run_id: str, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id)
        store = get_store()
        items = store.items(run.id)
        plan = view.load_plan(store.get_data(run.id, "plan"))
        per_student = Counter((i.student_number, i.state) for i in items)
        students = [{"student_number": sp.student_number, "submission_id": sp.submission_id,
                     "pending": per_student[(sp.student_number, "pending")],
                     "decided": per_student[(sp.student_number, "decided")],
                     "order": store.get_data(run.id, f"order:{sp.student_number}")}
                    for sp in (plan.students if plan else [])]
        return {**summary(run), "students": students,
                "by_kind": dict(Counter(i.kind for i in items)),
                "can_decide": auth.is_authorized(who, dag_id_for(run.district), "PUT")}

    @api.get("/runs/{run_id}/items")
    def api_items(run_id: str, who: Who, state: Annotated[str | None, Query(pattern="^(pending|decided)$")] = None,
                  kind: Annotated[str | None, Query(max_length=40)] = None) -> dict[str, Any]:
        run = load_run(who, run_id)
        if kind and kind not in view.KINDS:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown kind {kind!r}; one of {', '.join(view.KINDS)}")
        return {"items": [view.item_json(r) for r in get_store().items(run.id, state=state, kind=kind)]}

    @api.get("/runs/{run_id}/items/{item_key:path}")
    def api_item(run_id: str, item_key: str, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id)
        try:
            return view.item_json(get_store().item(run.id, item_key))
        except ItemNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None

    @api.post("/runs/{run_id}/items/{item_key:path}/decision")
    def api_decide(run_id: str, item_key: str, body: DecisionIn, request: Request, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id, "PUT")
        check_csrf(request, who)
        return decide(run, item_key, body, who)

    @api.post("/runs/{run_id}/bulk-approve-safe")
    def api_bulk(run_id: str, request: Request, who: Who, body: BulkIn | None = None) -> dict[str, Any]:
        run = load_run(who, run_id, "PUT")
        check_csrf(request, who)
        body = body or BulkIn()
        return bulk_safe(run, who, body.end_date, body.comment)

    @api.get("/runs/{run_id}/quarantine")
    def api_quarantine(run_id: str, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id)
        return {"quarantine": view.quarantine_json(get_store().quarantine(run.id))}

    @api.get("/runs/{run_id}/students/{student_number}/order")
    def api_get_order(run_id: str, student_number: str, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id)
        sp = student_plan(run, student_number)
        saved = get_store().get_data(run.id, f"order:{student_number}")
        return saved or {"student_number": student_number, "order": view.orderable_refs(sp), "version": 0}

    @api.post("/runs/{run_id}/students/{student_number}/order")
    def api_order(run_id: str, student_number: str, body: OrderIn, request: Request, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id, "PUT")
        check_csrf(request, who)
        return save_order(run, student_number, body.order, who)

    @api.get("/runs/{run_id}/students/{student_number}/values")
    def api_get_values(run_id: str, student_number: str, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id)
        store = get_store()
        sp = student_plan(run, student_number)
        saved = store.get_data(run.id, f"values:{student_number}") or {"choices": {}, "version": 0}
        rows = view.student_value_rows(sp, _plan_snapshot(store, run.id))
        return {**saved, "student_number": student_number,
                "values": [{**r.model_dump(), "default": r.default} for r in rows]}

    @api.post("/runs/{run_id}/students/{student_number}/values")
    def api_values(run_id: str, student_number: str, body: ValuesIn, request: Request, who: Who) -> dict[str, Any]:
        run = load_run(who, run_id, "PUT")
        check_csrf(request, who)
        return save_values(run, student_number, body.choices, who)

    app.include_router(api)

    # ------------------------------------------------------------ pages

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request, who: Who) -> HTMLResponse:
        from ..config import district_files, load_district

        runs = [summary(r) for r in readable_runs(who)]
        districts = []
        for path in district_files():  # the districts whose forms this user may preview
            try:
                name = load_district(path).name
            except ValueError:
                continue  # a broken district file is the DAG file's import error, not this page's
            if auth.is_authorized(who, dag_id_for(name), "GET"):
                districts.append(name)
        return render("runs.html", request, runs=runs, user=who.username, airflow=airflow_base(request),
                      districts=districts)

    @app.get("/dag-runs/{dag_id}/{dag_run_id}")
    def from_dag_run(dag_id: str, dag_run_id: str, request: Request, who: Who) -> RedirectResponse:
        """The Airflow DAG-run view's "Writeback review" tab lands here: find the store's run."""
        from ..operators.context import run_id_for

        if not auth.is_authorized(who, dag_id, "GET"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{who.username} may not read DAG {dag_id}")
        district = dag_id.removeprefix("writeback_")
        return RedirectResponse(run_url(request, run_id_for(district, dag_run_id)), status_code=303)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str, who: Who,
                 kind: Annotated[str | None, Query(max_length=40)] = None,
                 state: Annotated[str | None, Query(pattern="^(pending|decided|)$")] = None,
                 page: Annotated[int, Query(ge=1, le=100000)] = 1,
                 notice: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
        run = load_run(who, run_id)
        store = get_store()
        kind = kind if kind in view.KINDS else None
        state = state or None
        items = store.items(run.id)
        plan = view.load_plan(store.get_data(run.id, "plan"))
        snapshot = _plan_snapshot(store, run.id)
        quarantined = store.quarantine(run.id)
        shown = [i for i in items if (kind is None or i.kind == kind) and (state is None or i.state == state)]
        by_submission: dict[str, list] = {}
        for row in shown:
            by_submission.setdefault(row.submission_id, []).append(row)
        students = plan.students if plan else []
        if kind or state:
            students = [sp for sp in students if sp.submission_id in by_submission]
        pages = max(1, math.ceil(len(students) / PAGE_SIZE))
        page = min(page, pages)
        portal = view.portal_emails_by_person(snapshot) if snapshot else {}
        panels = [view.student_panel(sp, by_submission.get(sp.submission_id, []), snapshot,
                                     store.get_data(run.id, f"order:{sp.student_number}"),
                                     store.get_data(run.id, f"values:{sp.student_number}"), portal)
                  for sp in students[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]]
        info = view.run_json(run, items, quarantined)
        kinds = Counter(i.kind for i in items)
        pending_kinds = Counter(i.kind for i in items if i.state == "pending")
        chart = view.outcome_chart(items)
        safe_pending = sum(n for k, n in pending_kinds.items() if k in view.SAFE_CHOICES)
        can_edit = auth.is_authorized(who, dag_id_for(run.district), "PUT") and not run.approved_hash
        return render("run.html", request, run=info, panels=panels, user=who.username, can_edit=can_edit,
                      csrf=csrf_token(auth.secret(), who.username), csrf_field=CSRF_FIELD,
                      kinds=view.KINDS, kind_counts=kinds, pending_kinds=pending_kinds, safe_pending=safe_pending,
                      filters={"kind": kind or "", "state": state or ""}, page=page, pages=pages,
                      n_students=len(students), quarantine=view.quarantine_json(quarantined), notice=notice,
                      today=_today().isoformat(), airflow=airflow_base(request), chart=chart,
                      run_items=view.run_wide_items(items),
                      has_report=store.get_data(run.id, "report") is not None,
                      has_validation=store.get_data(run.id, "validation") is not None,
                      run_url=lambda **p: run_url(request, run.id, **{"kind": kind, "state": state, **p}))

    # ------------------------------------------------------------ preview one form (mappings)

    def readable_district(who: Principal, name: str, method: str = "GET"):
        """The district's config, for a user who may read its DAG (and, to run a preview, edit it: a preview
        reads the whole district from PowerSchool with the district's credentials)."""
        from ..config import district as district_config

        try:
            config = district_config(name)
        except KeyError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no district {name!r}") from None
        dag_id = dag_id_for(config.name)
        if not auth.is_authorized(who, dag_id, "GET"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{who.username} may not read DAG {dag_id}")
        if method == "PUT" and not auth.is_authorized(who, dag_id, "PUT"):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"{who.username} may not preview forms of {dag_id} (needs edit access to the DAG)")
        return config

    def preview_page(request: Request, who: Principal, config: Any, submission: str = "",
                     result: Any = None) -> HTMLResponse:
        can_preview = auth.is_authorized(who, dag_id_for(config.name), "PUT")
        return render("preview.html", request, district=config.name, title=config.title or config.name,
                      can_preview=can_preview,
                      user=who.username, csrf=csrf_token(auth.secret(), who.username), csrf_field=CSRF_FIELD,
                      submission=submission, result=view.preview_view(result) if result is not None else None)

    @app.get("/districts/{district}/preview", response_class=HTMLResponse)
    def preview_form(request: Request, district: str, who: Who) -> HTMLResponse:
        return preview_page(request, who, readable_district(who, district))

    @app.post("/districts/{district}/preview", response_class=HTMLResponse)
    def preview_submit(request: Request, district: str, who: Who,
                       submission: Annotated[str, Form(min_length=1, max_length=200)],
                       csrf_token: Annotated[str, Form()] = "") -> HTMLResponse:
        """Take one submission through the run's stages against the live PowerSchool; nothing is written."""
        from ..pipeline.preview import district_clients, preview_submission

        config = readable_district(who, district, "PUT")
        check_csrf(request, who, csrf_token)
        from ..powerschool.errors import PowerSchoolError
        from ..quality import SnapshotIntegrityError
        from ..sources.schoolengage import SchoolEngageError

        source, client = (preview_clients or district_clients)(config)
        try:
            result = preview_submission(config, submission.strip(), source, client, remembered_from=get_store())
        except (PowerSchoolError, SchoolEngageError, SnapshotIntegrityError) as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the preview could not read what it needs: {exc}") from None
        finally:
            source.close()
            client.close()
        return preview_page(request, who, config, submission.strip(), result)

    @app.get("/runs/{run_id}/report", response_class=HTMLResponse)
    def report_page(run_id: str, who: Who) -> HTMLResponse:
        """The run's report (written by the report task) as one self-contained page."""
        from ..pipeline.report import render_html

        run = load_run(who, run_id)
        store = get_store()
        page = store.get_data(run.id, "report_html")
        report = store.get_data(run.id, "report")
        if page is None and report is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this run has no report yet")
        return HTMLResponse(page["html"] if page and "html" in page else render_html(report))

    @app.get("/runs/{run_id}/validation", response_class=HTMLResponse)
    def validation_page(run_id: str, who: Who) -> HTMLResponse:
        """The run's data-quality results (one line per expectation, counts only)."""
        from ..quality import render_validation_html

        run = load_run(who, run_id)
        data = get_store().get_data(run.id, "validation")
        if data is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this run has no validation results yet")
        return HTMLResponse(render_validation_html(run.id, data["results"]))

    def back(request: Request, run_id: str, kind: str, state: str, page: int, anchor: str, notice: str) -> str:
        url = run_url(request, run_id, kind=kind or None, state=state or None, page=page, notice=notice)
        return url + (f"#{quote(anchor)}" if anchor else "")

    @app.post("/runs/{run_id}/items/{item_key:path}/decide")
    def form_decide(request: Request, run_id: str, item_key: str, who: Who,
                    choice: Annotated[str, Form(min_length=1, max_length=100)],
                    version: Annotated[int, Form(ge=1)],
                    csrf_token: Annotated[str, Form()] = "",
                    end_date: Annotated[str, Form(max_length=20)] = "",
                    comment: Annotated[str, Form(max_length=2000)] = "",
                    kind: Annotated[str, Form(max_length=40)] = "", state: Annotated[str, Form(max_length=10)] = "",
                    page: Annotated[int, Form(ge=1)] = 1,
                    anchor: Annotated[str, Form(max_length=100)] = "") -> RedirectResponse:
        check_csrf(request, who, csrf_token)
        run = load_run(who, run_id, "PUT")
        data = {"end_date": end_date} if choice == "expire" else {}
        try:
            decide(run, item_key, DecisionIn(choice=choice, data=data, comment=comment, version=version), who)
            notice = f"Decided: {view.choice_label(choice)}"
        except HTTPException as exc:
            if exc.status_code not in (400, 404, 409):
                raise
            notice = f"Not saved ({exc.status_code}): {exc.detail}"
        return RedirectResponse(back(request, run.id, kind, state, page, anchor, notice), status_code=303)

    @app.post("/runs/{run_id}/bulk-approve-safe")
    def form_bulk(request: Request, run_id: str, who: Who, csrf_token: Annotated[str, Form()] = "",
                  end_date: Annotated[str, Form(max_length=20)] = "") -> RedirectResponse:
        check_csrf(request, who, csrf_token)
        run = load_run(who, run_id, "PUT")
        try:
            end = dt.date.fromisoformat(end_date) if end_date else None
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"end_date {end_date!r} is not YYYY-MM-DD") from None
        result = bulk_safe(run, who, end)
        notice = f"Approved {result['decided']} safe item(s)" + (
            f"; {result['conflicts']} changed meanwhile and were left as decided by others"
            if result["conflicts"] else "")
        return RedirectResponse(run_url(request, run.id, notice=notice), status_code=303)

    @app.post("/runs/{run_id}/students/{student_number}/order")
    async def form_order(request: Request, run_id: str, student_number: str, who: Who) -> RedirectResponse:
        form = await request.form()
        check_csrf(request, who, str(form.get(CSRF_FIELD) or ""))
        refs = [str(r) for r in form.getlist("ref")]
        move = str(form.get("move") or "")  # "<ref>|up" or "<ref>|down" from the arrow buttons
        if "|" in move:
            ref, _, direction = move.rpartition("|")
            if ref in refs:
                i = refs.index(ref)
                j = i - 1 if direction == "up" else i + 1
                if 0 <= j < len(refs):
                    refs[i], refs[j] = refs[j], refs[i]

        def work() -> Run:
            run = load_run(who, run_id, "PUT")
            save_order(run, student_number, refs, who)
            return run

        from starlette.concurrency import run_in_threadpool

        run = await run_in_threadpool(work)
        anchor = f"s-{student_number}"
        return RedirectResponse(back(request, run.id, str(form.get("kind") or ""), str(form.get("state") or ""),
                                     int(str(form.get("page") or "1")) if str(form.get("page") or "1").isdigit() else 1,
                                     anchor, "Contact order saved"), status_code=303)

    @app.post("/runs/{run_id}/students/{student_number}/values")
    async def form_values(request: Request, run_id: str, student_number: str, who: Who) -> RedirectResponse:
        form = await request.form()
        check_csrf(request, who, str(form.get(CSRF_FIELD) or ""))
        choices = {str(k)[2:]: str(v) for k, v in form.multi_items() if str(k).startswith("v:")}

        def work() -> tuple[Run, str]:
            run = load_run(who, run_id, "PUT")
            try:
                save_values(run, student_number, choices, who)
                return run, "Value choices saved"
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                return run, f"Not saved ({exc.status_code}): {exc.detail}"

        from starlette.concurrency import run_in_threadpool

        run, notice = await run_in_threadpool(work)
        page = str(form.get("page") or "1")
        return RedirectResponse(back(request, run.id, str(form.get("kind") or ""), str(form.get("state") or ""),
                                     int(page) if page.isdigit() else 1, f"s-{student_number}", notice),
                                status_code=303)

    return app

"""The viewer: a FastAPI app of server-rendered pages over a results database, read-only.

Every request opens the database read-only (SQLite `mode=ro`) and closes it afterwards, so
pages of a live run show the trials stored so far and the viewer can never write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amlab.errors import AmlabError
from amlab.store import Store
from amlab.store.postgres import is_postgres
from amlab.web.data import (
    STATUSES,
    ExperimentIndex,
    Filters,
    IndexCache,
    TrialSummary,
    build_grid,
)
from amlab.web.transcript import TranscriptView, build_transcript

# Defence in depth behind escaping: only the viewer's own script and styles may run or load.
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


# The viewer answers only requests addressed to it by its own name: a page of another site
# whose name an attacker re-points at 127.0.0.1 (DNS rebinding) gets 400, not the data.
SERVED_HOSTS = ["127.0.0.1", "localhost"]

# Characters that change how the text around them reads without being seen (bidirectional
# controls: a subject can display reversed) or that cannot be encoded at all (a lone
# surrogate an agent wrote): shown as their code point instead.
_INVISIBLE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(value: Any) -> Any:
    """Every value a template prints, with the characters above made visible (⟨U+202E⟩)."""
    if not isinstance(value, str) or not _INVISIBLE.search(value):
        return value
    shown = _INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", value)
    # The replacement adds no markup, so escaped text stays escaped.
    return Markup(shown) if isinstance(value, Markup) else shown


# Rows per page of a trial list (a page of 6,000 rows takes over a second to draw).
LIST_PAGE = 500


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)
        await self.app(scope, receive, with_headers)


def open_store(request: Request) -> Iterator[Store]:
    store = Store(request.app.state.db_path, read_only=True, verify=False)
    try:
        yield store
    finally:
        store.close()


StoreDep = Annotated[Store, Depends(open_store)]


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("amlab.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      finalize=visible)
    env.filters["q"] = lambda text: quote(str(text), safe="", errors="backslashreplace")
    env.filters["percent"] = lambda x: f"{x:.0%}"
    env.globals["statuses"] = STATUSES
    return env


def create_app(db_path: Path | str) -> FastAPI:
    """The viewer of one results database, a file or a postgresql:// URL (checked now: a
    bad location fails here, not later)."""
    checked = Store(db_path, read_only=True)
    shown = checked.location if is_postgres(db_path) else Path(db_path).name
    checked.close()
    env = _environment()
    app = FastAPI(title="amlab viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db_path = db_path
    indexes = IndexCache()
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=SERVED_HOSTS)
    static = resources.files("amlab.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(db=shown, **context)
        return HTMLResponse(html, status_code=status_code)

    def not_found(what: str) -> HTMLResponse:
        return page("missing.html", status_code=404, what=what)

    @app.exception_handler(AmlabError)
    def cannot_show(request: Request, problem: AmlabError) -> HTMLResponse:
        # What the database holds cannot be read (a stored experiment today's schema
        # rejects): the one sentence, not a server error without one.
        return page("problem.html", status_code=500, problem=str(problem))

    def filters_of(request: Request, level: list[str]) -> Filters:
        return Filters.from_query(request.query_params, level)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse)
    def overview(store: StoreDep) -> HTMLResponse:
        experiments = [index for name in store.experiments()
                       if (index := indexes.get(store, name)) is not None]
        return page("overview.html", experiments=experiments)

    @app.get("/experiments/{name:path}", response_class=HTMLResponse)
    def experiment(name: str, request: Request, store: StoreDep,
                   level: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
        index = indexes.get(store, name)
        if index is None:
            return not_found(f"experiment '{name}'")
        filters = filters_of(request, level)
        grid = build_grid(index, filters)
        return page("experiment.html", index=index, filters=filters, grid=grid,
                    matching=len(index.matching(filters)))

    @app.get("/trials", response_class=HTMLResponse)
    def trial_list(request: Request, store: StoreDep, experiment: str = "", start: int = 0,
                   level: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
        index = indexes.get(store, experiment)
        if index is None:
            return not_found(f"experiment '{experiment}'")
        filters = filters_of(request, level)
        cell = None
        if filters.family and filters.condition and filters.model:
            cell = build_grid(index, filters).cells.get(
                (filters.family, filters.condition, filters.model))
        matching = index.matching(filters)
        start = max(0, min(start, len(matching) - 1))
        return page("trials.html", index=index, filters=filters, cell=cell,
                    behaviour=index.chosen_behaviour(filters), total=len(matching),
                    start=start, page_size=LIST_PAGE, trials=matching[start:start + LIST_PAGE])

    @app.get("/trials/{trial_id}", response_class=HTMLResponse)
    def trial(trial_id: int, request: Request, store: StoreDep,
              level: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
        loaded = _load_trial(store, indexes, trial_id)
        if loaded is None:
            return not_found(f"trial {trial_id}")
        summary, index, view = loaded
        filters = filters_of(request, level)
        in_context = [t.id for t in index.matching(filters)]
        if trial_id not in in_context:
            filters, in_context = Filters(), [t.id for t in index.trials]
        position = in_context.index(trial_id)
        return page("trial.html", index=index, filters=filters, trial=summary, view=view,
                    position=position, count=len(in_context),
                    previous=in_context[position - 1] if position > 0 else None,
                    next=in_context[position + 1] if position + 1 < len(in_context) else None,
                    siblings=_siblings(index, summary))

    @app.get("/compare", response_class=HTMLResponse)
    def compare(store: StoreDep, a: int, b: int) -> HTMLResponse:
        pair = [_load_trial(store, indexes, a), _load_trial(store, indexes, b)]
        missing = [str(i) for i, loaded in zip((a, b), pair, strict=True) if loaded is None]
        if missing:
            return not_found(f"trial {' and '.join(missing)}")
        sides = [(summary, view) for summary, _, view in (p for p in pair if p)]
        return page("compare.html", sides=sides,
                    differs=_differences(sides[0][0], sides[1][0]))

    return app


def _load_trial(store: Store, indexes: IndexCache, trial_id: int
                ) -> tuple[TrialSummary, ExperimentIndex, TranscriptView] | None:
    row = store.trial(trial_id)
    if row is None:
        return None
    index = indexes.get(store, row.experiment)
    if index is None:
        return None
    summary = next((t for t in index.trials if t.id == trial_id), None)
    if summary is None:
        return None
    view = build_transcript(trial_id, list(row.messages), list(row.actions),
                            store.verdicts_of(trial_id))
    return summary, index, view


def _siblings(index: ExperimentIndex, trial: TrialSummary) -> dict[str, list[TrialSummary]]:
    """Trials worth comparing with this one: the same sample under the other conditions,
    and the same condition and sample run by the other models."""
    return {
        "other conditions": [t for t in index.trials if t.family == trial.family
                             and t.model == trial.model and t.sample == trial.sample
                             and t.condition != trial.condition],
        "other models": [t for t in index.trials if t.family == trial.family
                         and t.condition == trial.condition and t.sample == trial.sample
                         and t.model != trial.model],
    }


def _differences(a: TrialSummary, b: TrialSummary) -> list[str]:
    fields = ("experiment", "family", "model", "sample")
    differing = [f for f in fields if getattr(a, f) != getattr(b, f)]
    factors = sorted({*a.factors, *b.factors})
    differing += [f for f in factors if a.factors.get(f) != b.factors.get(f)]
    return differing

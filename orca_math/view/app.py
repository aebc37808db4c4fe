"""The viewer's ASGI app: JSON endpoints over the folders, and the static page that calls them.

Built on Starlette: routing, static files and JSON responses are all the viewer needs, so the
larger FastAPI (request models, OpenAPI pages) would add dependencies and nothing a user sees.
Every endpoint is a GET that reads files; any other method is refused, so the viewer cannot
change a folder. Pages carry a Content-Security-Policy that allows only the app's own script,
as a second guard behind the page's rule of writing every value as text (never as HTML).
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from orca_math.readers import EvaluationReader, GenerationReader, LoopReader, RowQuery
from orca_math.readers.lineage import lineage
from orca_math.view.sources import SourceError, Sources

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "orca_math_view_token"
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


#: Host header names a loopback viewer answers to (any port).
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _host_name(header: str) -> str:
    """`127.0.0.1:8765` -> `127.0.0.1`; `[::1]:8765` -> `[::1]`."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Guard:
    """Refuses writes, checks the access token when one is set, and adds the security headers.

    Without a token (a loopback viewer), a request must also name a loopback host: a web page on
    another site that rebinds its DNS name to 127.0.0.1 sends its own name, and is refused.
    """

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.method not in ("GET", "HEAD"):
            await PlainTextResponse("The viewer is read-only.", status_code=405, headers={"Allow": "GET, HEAD"})(scope, receive, send)
            return
        if self.token is None and _host_name(request.headers.get("host", "")).lower() not in LOOPBACK_NAMES:
            await PlainTextResponse("This viewer answers only to 127.0.0.1 or localhost.", status_code=403)(scope, receive, send)
            return
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if self.token is not None and not hmac.compare_digest(given.encode(), self.token.encode()):
            await PlainTextResponse("This viewer needs the token printed when it started: open the URL it printed.",
                                    status_code=403)(scope, receive, send)
            return
        set_cookie = self.token is not None and request.query_params.get("token") == self.token

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]
                if set_cookie:
                    headers.append((b"set-cookie", f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(folders: list[str | Path], *, token: str | None = None) -> Starlette:
    """The viewer's ASGI app over one or more folders (the first is the main one).

    Args:
        folders: output, evaluation or learning-loop folders.
        token: when given, every request must carry it (`?token=` once, then a cookie).

    Raises:
        OutputFolderError: a folder is not an orca-math folder.
    """
    sources = Sources(list(folders))

    def reader_of(request: Request):
        reader = sources.reader(request.query_params.get("source", "0"))
        reader.refresh()  # catch up with a run that is still writing
        return reader

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def api_sources(request: Request) -> Response:
        return JSONResponse({"sources": sources.listing()})

    async def api_overview(request: Request) -> Response:
        return JSONResponse(reader_of(request).overview())

    async def api_rows(request: Request) -> Response:
        reader = reader_of(request)
        try:
            query = RowQuery.from_params(request.query_params)
        except ValueError as exc:
            return _error(str(exc))
        page = reader.table.page(query)
        page["facets"] = reader.table.facet_counts()
        page["kind"] = reader.kind
        return JSONResponse(page)

    async def api_problem(request: Request) -> Response:
        reader = reader_of(request)
        problem_id = request.path_params["problem_id"]
        if isinstance(reader, GenerationReader):
            found: Any = lineage(reader, problem_id)
        elif isinstance(reader, LoopReader):
            found = reader.problem(problem_id)
        elif isinstance(reader, EvaluationReader):
            items = reader.item(problem_id)
            found = {"id": problem_id, "items": items} if items else None
        else:
            found = None
        if found is None:
            return _error(f"no problem {problem_id!r} in {reader.path}", 404)
        return JSONResponse({"kind": reader.kind, **found})

    async def api_iteration(request: Request) -> Response:
        reader = reader_of(request)
        if not isinstance(reader, LoopReader):
            return _error(f"{reader.path} is not a learning-loop folder", 404)
        found = reader.iteration(request.path_params["number"])
        if found is None:
            return _error(f"no iteration {request.path_params['number']} in {reader.path}", 404)
        return JSONResponse(found)

    async def api_pairs(request: Request) -> Response:
        reader = reader_of(request)
        if not isinstance(reader, LoopReader):
            return _error(f"{reader.path} is not a learning-loop folder", 404)
        try:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 20))
        except ValueError:
            return _error("offset and limit must be whole numbers")
        return JSONResponse(reader.pairs(request.path_params["number"], request.path_params["kind"], offset, limit,
                                         request.query_params.get("problem_id")))

    async def api_compare(request: Request) -> Response:
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            return _error("compare needs two sources: ?a=<source>&b=<source> (see /api/sources)")
        return JSONResponse(sources.compare(a, b))

    async def source_error(request: Request, exc: Exception) -> Response:
        return _error(str(exc), 404)

    routes = [
        Route("/", index),
        Route("/api/sources", api_sources),
        Route("/api/overview", api_overview),
        Route("/api/rows", api_rows),
        Route("/api/problem/{problem_id:path}", api_problem),
        Route("/api/iteration/{number:int}", api_iteration),
        Route("/api/pairs/{number:int}/{kind}", api_pairs),
        Route("/api/compare", api_compare),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token)],
                     exception_handlers={SourceError: source_error})

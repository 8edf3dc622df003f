"""Declared routes: each carries its body, query and response types, so decoding, role checks
and the OpenAPI document all come from one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal

from aiohttp import web

from api.auth import authenticate
from api.deps import Deps, deps
from api.envelope import ok
from api.idempotency import run_once
from api.routing_types import CurrentUser
from api.validation import convert_query, decode_body, parse_uuid
from engine.domain.errors import Forbidden, UnsupportedMediaType

Access = Literal["public", "user", "admin"]


@dataclass
class Call:
    """One request as a handler sees it."""

    request: web.Request
    deps: Deps
    user: CurrentUser | None
    body: Any = None
    query: Any = None

    @property
    def me(self) -> CurrentUser:
        assert self.user is not None, "route declared public but reads the caller"
        return self.user

    def id(self, name: str = "id") -> uuid.UUID:
        return parse_uuid(self.request.match_info[name], name)


@dataclass
class Reply:
    data: Any
    status: int = 200
    message: str = "ok"


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    access: Access
    body: Any = None
    query: Any = None
    response: Any = None
    status: int = 200
    raw_body: str | None = None  # content type of a body passed through undecoded
    tags: list[str] = field(default_factory=list)
    produces: str = "application/json"  # content type of a success answer


class Routes:
    """One view module's routes, declared with `@routes.route(...)`; the app factory collects them."""

    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(self, method: str, path: str, *, summary: str, access: Access = "user", body: Any = None,
              query: Any = None, response: Any = None, status: int = 200, raw_body: str | None = None,
              tag: str = "", produces: str = "application/json") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.specs.append(RouteSpec(method, path, handler, summary, access, body, query, response, status,
                                        raw_body, [tag] if tag else [], produces))
            return handler
        return register


class Router:
    """The route table of one application, built by `init_app` from the view modules' Routes."""

    def __init__(self, *tables: Routes, prefix: str = "/api/v1"):
        self.prefix = prefix
        self.specs: list[RouteSpec] = [spec for table in tables for spec in table.specs]
        # Fixed paths and their methods: `PATCH /contacts/import` is that path with a method it
        # lacks (405), not `/contacts/{id}` with the id "import".
        self.fixed: dict[str, set[str]] = {}
        for spec in self.specs:
            if "{" not in spec.path:
                self.fixed.setdefault(prefix + spec.path, set()).add(spec.method)

    def install(self, app: web.Application) -> None:
        fixed = self.fixed
        for spec in self.specs:
            app.router.add_route(spec.method, self.prefix + spec.path, _adapt(spec, fixed if "{" in spec.path else {}))


# The application's route table, for the OpenAPI document.
ROUTER = web.AppKey("router", Router)


def _adapt(spec: RouteSpec, fixed: dict[str, set[str]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def view(request: web.Request) -> web.StreamResponse:
        if request.path in fixed:
            raise web.HTTPMethodNotAllowed(request.method, fixed[request.path])
        d = deps(request)
        user = None if spec.access == "public" else await authenticate(request, d)
        if spec.access == "admin" and (user is None or not user.is_admin):
            raise Forbidden("administrators only")
        if user is not None and user.scope == "read" and request.method not in ("GET", "HEAD"):
            raise Forbidden("this API token is read-only", field="Authorization")
        if request.method == "POST" and user is not None:
            return await run_once(request, d.redis, d.settings.idempotency_ttl, str(user.id),
                                  lambda: _run(spec, Call(request, d, user)))
        return await _run(spec, Call(request, d, user))

    view.__name__ = spec.handler.__name__
    return view


async def _run(spec: RouteSpec, call: Call) -> web.StreamResponse:
    request = call.request
    if spec.query is not None:
        call.query = convert_query(dict(request.query), spec.query)
    if spec.body is not None:
        if request.content_type != "application/json":
            raise UnsupportedMediaType("send the body as Content-Type: application/json", field="Content-Type")
        call.body = decode_body(await request.read(), spec.body)
    result = await spec.handler(call)
    if isinstance(result, web.StreamResponse):
        return result
    if isinstance(result, Reply):
        return ok(request, result.data, status=result.status, message=result.message)
    return ok(request, result, status=spec.status)

"""Request ids, and the one place where errors become HTTP statuses."""

from __future__ import annotations

import logging
import secrets
from typing import Awaitable, Callable

import asyncio

import asyncpg
from aiohttp import web
from redis import exceptions as redis_errors

from api.envelope import REQUEST_ID, error
from api.routing import ROUTER
from engine.domain.errors import EdmError

log = logging.getLogger("edm.api")

STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "TEMPLATE_ERROR": 422,
    "UNPROCESSABLE": 422,
    "UNAUTHORIZED": 401,
    "INVALID_CREDENTIALS": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "QUOTA_INSUFFICIENT": 409,
    "SENDER_IN_USE": 409,
    "TEMPLATE_IN_USE": 409,
    "INVALID_STATE": 409,
    "CONCURRENT_CAMPAIGN_LIMIT": 409,
    "SERVICE_BUSY": 409,
    "LAST_ADMIN": 409,
    "SERVICE_IN_USE": 409,
    "USER_HAS_CAMPAIGNS": 409,
    "IDEMPOTENCY_IN_PROGRESS": 409,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "TOO_MANY_ATTEMPTS": 429,
    "SERVICE_UNAVAILABLE": 503,
}

# What a client is told to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_ID] = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    response = await handler(request)
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    return response


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    match exc.status:
        case 404:
            return error(request, 404, "NOT_FOUND", f"no route {request.method} {request.path}")
        case 405:
            response = error(request, 405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed on {request.path}")
            router = request.app.get(ROUTER)
            # aiohttp lists the methods of every resource matching the path (`/contacts/{id}` for
            # `/contacts/import`): a fixed path allows only its own.
            allowed = (router.fixed.get(request.path) if router is not None else None) \
                or getattr(exc, "allowed_methods", None) or ()
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        case 413:
            return error(request, 413, "PAYLOAD_TOO_LARGE", "request body too large", {"field": "body"})
        case _:
            return error(request, exc.status, exc.reason.upper().replace(" ", "_"), exc.text or exc.reason)


def _database_error(request: web.Request, exc: asyncpg.PostgresError) -> web.Response:
    """Constraint violations that slipped past the stores' own checks are still the caller's fault."""
    details = {"constraint": getattr(exc, "constraint_name", None) or ""}
    match exc:
        case asyncpg.UniqueViolationError():
            return error(request, 409, "CONFLICT", "already exists", details)
        case asyncpg.ForeignKeyViolationError():
            return error(request, 400, "VALIDATION_ERROR", "refers to something that does not exist", details)
        case asyncpg.CheckViolationError() | asyncpg.NotNullViolationError():
            return error(request, 400, "VALIDATION_ERROR", "value out of range", details)
        case asyncpg.DataError():
            return error(request, 400, "VALIDATION_ERROR", "value out of range", details)
    raise exc


def unavailable_dependency(exc: BaseException) -> str | None:
    """`database` or `redis` when `exc` means that server cannot be reached right now."""
    match exc:
        case redis_errors.ConnectionError() | redis_errors.TimeoutError() | redis_errors.ReadOnlyError():
            return "redis"
        case (asyncpg.PostgresConnectionError() | asyncpg.exceptions.OperatorInterventionError()
              | asyncpg.exceptions.TooManyConnectionsError() | asyncpg.exceptions.ConnectionDoesNotExistError()):
            return "database"
        case asyncpg.InterfaceError() if "connection" in str(exc) and "closed" in str(exc):
            return "database"
        # A connection killed mid-statement can leave asyncpg's protocol in a state it reports so.
        case asyncpg.exceptions.InternalClientError():
            return "database"
        # asyncpg raises plain socket errors and timeouts while (re)connecting; redis-py wraps its own.
        case OSError() | asyncio.TimeoutError():
            return "database"
    return None


def _unavailable(request: web.Request, dependency: str) -> web.Response:
    log.warning("dependency_unavailable dependency=%s path=%s", dependency, request.path)
    response = error(request, 503, "SERVICE_UNAVAILABLE", f"the {dependency} is unavailable; retry shortly",
                     {"dependency": dependency})
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EdmError as exc:
        status = STATUS_BY_CODE.get(exc.code, 400)
        response = error(request, status, exc.code, exc.message, exc.details)
        if status in (429, 503):
            response.headers["Retry-After"] = str(exc.details.get("retry_after", RETRY_AFTER_SECONDS))
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except Exception as exc:
        dependency = unavailable_dependency(exc)
        if dependency is not None:
            return _unavailable(request, dependency)
        if not isinstance(exc, asyncpg.PostgresError):
            log.exception("unhandled_error path=%s", request.path)
            return error(request, 500, "INTERNAL_ERROR", "internal error")
        try:
            return _database_error(request, exc)
        except asyncpg.PostgresError:
            log.exception("database_error path=%s", request.path)
            return error(request, 500, "INTERNAL_ERROR", "internal error")

"""The HTTP server side of errors aiohttp answers before any handler runs (an over-long request
line or header, a malformed request): the JSON error envelope, not aiohttp's bare text."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from api.envelope import error


class _EnvelopeRequestHandler(RequestHandler):  # type: ignore[type-arg]
    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, and checks nothing was sent
        code = "INTERNAL_ERROR" if status >= 500 else "MALFORMED_REQUEST"
        text = "internal error" if status >= 500 else f"malformed request: {type(exc).__name__ if exc else 'bad HTTP'}"
        response = error(request, plain.status, code, text)  # type: ignore[arg-type]
        response.force_close()
        return response


class _EnvelopeServer(Server):  # type: ignore[type-arg]
    def __call__(self) -> RequestHandler:  # type: ignore[type-arg]
        return _EnvelopeRequestHandler(self, loop=self._loop, **self._kwargs)


class EnvelopeAppRunner(web.AppRunner):
    """An AppRunner whose connections answer parse errors with the error envelope."""

    async def _make_server(self) -> Any:
        server = await super()._make_server()
        # The application builds a plain Server (Application._make_handler); this one only
        # changes the per-connection handler class.
        server.__class__ = _EnvelopeServer
        return server

"""`Idempotency-Key` on POSTs: a retried call returns the first answer instead of acting twice."""

from __future__ import annotations

import hashlib
from typing import Awaitable, Callable

import orjson
from aiohttp import web

from engine.domain.errors import EdmError, ValidationError


class IdempotencyInProgress(EdmError):
    code = "IDEMPOTENCY_IN_PROGRESS"


class IdempotencyKeyReused(EdmError):
    code = "IDEMPOTENCY_KEY_REUSED"


async def run_once(request: web.Request, redis, ttl: int, owner: str,
                   run: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return await run()
    if len(key) > 200:
        raise ValidationError("Idempotency-Key is longer than 200 characters", field="Idempotency-Key")
    fingerprint = hashlib.sha256(await request.read()).hexdigest()
    slot = f"edm:idem:{owner}:{request.method}:{request.path}:{key}"
    claimed = await redis.set(slot, orjson.dumps({"state": "pending", "fp": fingerprint}), nx=True, ex=ttl)
    if not claimed:
        raw = await redis.get(slot)
        stored = orjson.loads(raw) if raw else {"state": "pending", "fp": fingerprint}
        if stored["fp"] != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different body", field="Idempotency-Key")
        if stored["state"] == "pending":
            raise IdempotencyInProgress("a request with this Idempotency-Key is still running", field="Idempotency-Key")
        replay = web.Response(body=str(stored["body"]).encode(), status=int(stored["status"]),
                              content_type="application/json")
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = await run()
    except BaseException:
        await redis.delete(slot)
        raise
    if isinstance(response, web.Response) and response.body is not None and response.status < 500:
        body = bytes(response.body).decode()  # type: ignore[arg-type]
        await redis.set(slot, orjson.dumps({"state": "done", "fp": fingerprint, "status": response.status, "body": body}), ex=ttl)
    else:
        await redis.delete(slot)
    return response

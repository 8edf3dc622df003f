"""A test send: one rendered message of a campaign or template to one address, through a chosen
service, counted like any send.

It takes the service's next free slot in the leader's hot state under the engine's write lock
(so the interval, shared with dispatch, and the daily quota hold), charges the owner one unit
through the ledger, and is written `sending` before the provider is called (at most once). It
is recorded as a one-recipient campaign named "test send: …", so every counter stays derivable.
A failed test send does not count towards the service's abnormal freeze.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

import asyncpg

from engine.dispatch.dispatch_queries import Fence
from engine.dispatch.hot_state import EPOCH, HotState, ServiceState
from engine.domain.commands import TestSendResult
from engine.domain.errors import InvalidState, NotFound, ServiceBusy, ServiceUnavailable, ValidationError
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.providers.base import Message, SendResult
from engine.store import quota_ledger
from engine.templating.rendering import compile_template, contact_vars, render

log = logging.getLogger("edm.engine.test_send")


@dataclass
class _Source:
    owner: uuid.UUID
    name: str
    template: Any
    sender_id: uuid.UUID | None
    sender_name: str


class TestSender:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, state: HotState, write_lock: asyncio.Lock,
                 mark_dirty: Callable[[set[uuid.UUID]], None], fence: Fence, max_wait: float = 30.0):
        self.fence = fence
        self.pool = pool
        self.clock = clock
        self.state = state
        self.write_lock = write_lock
        self.mark_dirty = mark_dirty
        self.max_wait = max_wait  # real seconds to wait for the service's next free slot

    async def send(self, caller: uuid.UUID, is_admin: bool, service_id: uuid.UUID, to: str, *,
                   campaign_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None,
                   sender: str | None = None) -> TestSendResult:
        src = await self._source(caller, is_admin, campaign_id, template_id, sender)
        contact = await self.pool.fetchrow(Q["test_send.contact"], src.owner, to)
        variables = contact_vars(to, contact["name"] if contact else "", dict(contact["fields"]) if contact else {})
        compiled = compile_template(src.template["subject"], src.template["html_body"], src.template["text_body"])
        rendered = render(compiled, variables)
        s = self.state.services.get(service_id)
        if s is None:
            raise NotFound("service not found", field="service_id")
        if not await self.pool.fetchval(Q["test_send.mapped"], src.owner, service_id):
            raise ValidationError("the owner may not send through this service (not mapped)", field="service_id")
        from_address = f"{src.sender_name}@{s.domain}"
        at, subtask_id, record_id = await self._take_slot(s, src, to, contact, from_address)
        assert s.provider is not None
        try:
            result = await s.provider.send(Message(subtask_id=str(subtask_id), campaign_id=str(record_id),
                                                   from_address=from_address, to=to, subject=rendered.subject,
                                                   html=rendered.html, text=rendered.text))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug is this request's failure
            log.exception("provider_crashed service=%s", s.name)
            result = SendResult.failed("PROVIDER_ERROR", f"{type(exc).__name__}: {exc}"[:500])
        await self._settle(s, src.owner, subtask_id, record_id, result)
        log.info("test_send service=%s campaign=%s outcome=%s", s.name, record_id, result.outcome)
        return TestSendResult(result.outcome, to, service_id, from_address, rendered.subject, record_id, subtask_id,
                              result.message_id, result.error, at)

    async def _source(self, caller: uuid.UUID, is_admin: bool, campaign_id: uuid.UUID | None,
                      template_id: uuid.UUID | None, sender: str | None) -> _Source:
        if campaign_id is not None:
            c = await self.pool.fetchrow(Q["test_send.from_campaign"], campaign_id)
            if c is None or (c["user_id"] != caller and not is_admin):
                raise NotFound("campaign not found", field="id")
            template = await self.pool.fetchrow(Q["test_send.template"], c["template_id"])
            return _Source(c["user_id"], c["name"], template, c["sender_id"], c["sender_name"])
        template = await self.pool.fetchrow(Q["test_send.template"], template_id)
        if template is None or (template["user_id"] != caller and not is_admin):
            raise NotFound("template not found", field="id")
        row = await self.pool.fetchrow(Q["test_send.sender"], template["user_id"], sender or "")
        if row is None:
            raise ValidationError("sender: one of the owner's senders is required", field="sender")
        return _Source(template["user_id"], template["name"], template, row["id"], row["name"])

    async def _take_slot(self, s: ServiceState, src: _Source, to: str, contact: Any,
                         from_address: str) -> tuple[datetime, uuid.UUID, uuid.UUID]:
        deadline = time.monotonic() + self.max_wait
        while True:
            async with self.write_lock:
                now = self.clock.now()
                if not s.usable or s.provider is None:
                    raise InvalidState("the service is disabled or frozen", field="service_id")
                if s.remaining_today <= 0 or now >= s.next_reset:
                    raise InvalidState("the service has no quota left today", field="service_id")
                if s.ready_at() <= now:
                    ids = await self._record(s, src, to, contact, from_address, now)
                    # Counted now, as dispatch counts a bind; its timer sees the new ready time.
                    s.last_request_at = now
                    s.used_today += 1
                    s.remaining_today -= 1
                    if s.remaining_today == 0:
                        self.mark_dirty(set(self.state.service_users.get(s.id, ())))
                    return (now, *ids)
                ready = s.ready_at()
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServiceBusy("the service's interval did not free a slot in time; try again",
                                  field="service_id",
                                  details={"retry_after": max(0.0, (ready - self.clock.now()).total_seconds())})
            try:
                await asyncio.wait_for(self.clock.sleep_until(ready), left)
            except TimeoutError:
                pass

    async def _record(self, s: ServiceState, src: _Source, to: str, contact: Any, from_address: str,
                      now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["test_send.record"], src.owner, f"test send: {src.name}"[:200], src.sender_id,
                                      src.sender_name, contact["id"] if contact else None, to, src.template["id"],
                                      s.id, now, from_address, self.fence.epoch)
            if row is None:
                raise ServiceUnavailable("this engine's leader lease lapsed; try again")
            # QUOTA_INSUFFICIENT rolls the whole record back: nothing was counted.
            await quota_ledger.apply(conn, src.owner, -1, "charge", campaign_id=row["campaign_id"],
                                     reason="test send")
        return row["subtask_id"], row["campaign_id"]

    async def _settle(self, s: ServiceState, owner: uuid.UUID, subtask_id: uuid.UUID, record_id: uuid.UUID,
                      result: SendResult) -> None:
        now = self.clock.now()
        async with self.write_lock, self.pool.acquire() as conn, conn.transaction():
            match result.outcome:
                case "sent":
                    await conn.execute(Q["test_send.settle_sent"], subtask_id, result.message_id, now)
                case "failed":
                    await conn.execute(Q["test_send.settle_failed"], subtask_id,
                                       f"{result.error_code}: {result.error}"[:500], now)
                case _:
                    await conn.execute(Q["test_send.settle_not_counted"], subtask_id, "throttled by the provider",
                                       now, s.id)
                    await quota_ledger.apply(conn, owner, 1, "refund", campaign_id=record_id,
                                             reason="test send throttled")
                    s.used_today -= 1
                    s.remaining_today += 1
                    extend = max(result.retry_after or 0.0, float(s.send_interval))
                    s.throttled_until = max(s.throttled_until or EPOCH, now + timedelta(seconds=extend))

"""The dashboard's HTTP client: login, overview, actions and the resumable event stream."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Literal, TypeVar

import aiohttp
import msgspec

from tui.feedback_models import AlertRow, Funnel, Reputation
from tui.limits_models import DomainGroupRow, SendRateLimitRow
from tui.models import (CampaignEventRow, CampaignView, Envelope, LiveEvent, Me, Overview, Page, QuotaEntryRow,
                        ServiceInfo, ServiceView, StatusEntryRow, SubtaskRow, UserServices, UserView)

T = TypeVar("T")
V = TypeVar("V", ServiceView, CampaignView, UserView)

CampaignVerb = Literal["pause", "resume", "cancel"]
ServiceVerb = Literal["unfreeze", "reset-now", "enable", "disable"]

_envelope = msgspec.json.Decoder(Envelope)
_overview = msgspec.json.Decoder(Overview)
_me = msgspec.json.Decoder(Me)
_event = msgspec.json.Decoder(LiveEvent)
_encoder = msgspec.json.Encoder()
_campaign_events = msgspec.json.Decoder(Page[CampaignEventRow])
_subtasks = msgspec.json.Decoder(Page[SubtaskRow])
_service = msgspec.json.Decoder(ServiceInfo)
_status_log = msgspec.json.Decoder(Page[StatusEntryRow])
_quota_log = msgspec.json.Decoder(Page[QuotaEntryRow])
_user_services = msgspec.json.Decoder(UserServices)
_funnel = msgspec.json.Decoder(Funnel)
_reputation = msgspec.json.Decoder(Reputation)
_suppression_page = msgspec.json.Decoder(Page[dict[str, Any]])
_alerts = msgspec.json.Decoder(Page[AlertRow])
_domain_groups = msgspec.json.Decoder(Page[DomainGroupRow])
_send_rate_limit = msgspec.json.Decoder(SendRateLimitRow)
_service_page = msgspec.json.Decoder(Page[ServiceView])
_campaign_page = msgspec.json.Decoder(Page[CampaignView])
_user_page = msgspec.json.Decoder(Page[UserView])

# Items of each list in the overview's answer, and per further page: a fleet larger than the
# first page costs one more request per PAGE items of the lists that overflow it.
FIRST_PAGE = 200
PAGE = 1000


class ApiError(Exception):
    """The API answered with an error envelope (stable code + message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class Unreachable(Exception):
    """The API could not be reached (down, restarting, network)."""


class ApiClient:
    """One aiohttp session to the control API; remembers the bearer token."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 5.0):
        # Accept the API root as printed by `edm serve` (…/api/v1) as well as the bare address.
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/v1{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, decoder: msgspec.json.Decoder[T] | None = None,
                      json: Any = None) -> T | None:
        """One call; returns the decoded `data` or raises ApiError / Unreachable."""
        body = _encoder.encode(json) if json is not None else None
        headers = self._headers() | ({"Content-Type": "application/json"} if body is not None else {})
        try:
            async with self.session.request(method, self._url(path), data=body, headers=headers,
                                            timeout=self._timeout) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        if status in (502, 503, 504) and not raw.startswith(b"{"):
            raise Unreachable(f"HTTP {status}")
        try:
            env = _envelope.decode(raw)
        except msgspec.DecodeError as exc:
            raise ApiError(status, "BAD_RESPONSE", f"HTTP {status}: not an API envelope") from exc
        if not env.success or status >= 400:
            err = env.error or {}
            raise ApiError(status, str(err.get("code", f"HTTP_{status}")), str(err.get("message", env.message)))
        return decoder.decode(env.data) if decoder is not None else None

    async def login(self, username: str, password: str) -> str:
        """Exchange a username and password for a token, and keep it."""
        self.token = None
        data = await self.request("POST", "/auth/login", msgspec.json.Decoder(dict[str, Any]),
                                  json={"username": username, "password": password})
        assert data is not None
        self.token = str(data["token"])
        return self.token

    async def me(self) -> Me:
        me = await self.request("GET", "/me", _me)
        assert me is not None
        return me

    async def overview(self) -> Overview:
        """The whole overview: its first page of each list, and the rest of any list that is
        longer, from the paged lists (GET /monitor/services, /campaigns, /users), so every row an
        operator can scroll to is there."""
        snapshot = await self.request("GET", f"/monitor/overview?limit={FIRST_PAGE}", _overview)
        assert snapshot is not None
        services = await self._rest("services", snapshot.services, snapshot.services_total, _service_page)
        campaigns = await self._rest("campaigns", snapshot.campaigns, snapshot.campaigns_total, _campaign_page)
        users = await self._rest("users", snapshot.users, snapshot.users_total, _user_page)
        if (services, campaigns, users) == (snapshot.services, snapshot.campaigns, snapshot.users):
            return snapshot
        return msgspec.structs.replace(snapshot, services=services, campaigns=campaigns, users=users)

    async def _rest(self, name: str, first: list[V], total: int, decoder: msgspec.json.Decoder[Page[V]]) -> list[V]:
        """`first` completed with the pages after it. The pages may come from a newer snapshot
        (a second later): an item seen twice is kept once, and a list that shrank ends early."""
        if total <= len(first):
            return first
        items = list(first)
        seen = {getattr(i, "id") for i in items}
        while len(items) < total:
            page = await self.fetch(f"/monitor/{name}?limit={PAGE}&offset={len(items)}", decoder)
            fresh = [i for i in page.items if getattr(i, "id") not in seen]
            if not page.items:
                break
            seen.update(getattr(i, "id") for i in fresh)
            items.extend(fresh)
            total = page.total
            if not fresh:
                break
        return items

    async def campaign_action(self, campaign_id: str, verb: CampaignVerb) -> None:
        await self.request("POST", f"/campaigns/{campaign_id}/{verb}", json={})

    async def service_action(self, service_id: str, verb: ServiceVerb) -> None:
        await self.request("POST", f"/services/{service_id}/{verb}", json={})

    async def fetch(self, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        data = await self.request("GET", path, decoder)
        assert data is not None
        return data

    # --- drill-down reads -----------------------------------------------------------------

    async def campaign_events(self, campaign_id: str, limit: int = 50) -> Page[CampaignEventRow]:
        return await self.fetch(f"/campaigns/{campaign_id}/events?limit={limit}", _campaign_events)

    async def failed_subtasks(self, campaign_id: str, limit: int = 20) -> Page[SubtaskRow]:
        return await self.fetch(f"/campaigns/{campaign_id}/subtasks?status=failed&limit={limit}", _subtasks)

    async def service(self, service_id: str) -> ServiceInfo:
        return await self.fetch(f"/services/{service_id}", _service)

    async def status_log(self, service_id: str, limit: int = 50) -> Page[StatusEntryRow]:
        return await self.fetch(f"/services/{service_id}/status-log?limit={limit}", _status_log)

    async def quota_log(self, user_id: str, limit: int = 50) -> Page[QuotaEntryRow]:
        return await self.fetch(f"/users/{user_id}/quota-log?limit={limit}", _quota_log)

    async def user_services(self, user_id: str | None) -> UserServices:
        """A user's mapped services; None means the caller's own (GET /me/services)."""
        return await self.fetch(f"/users/{user_id}/services" if user_id else "/me/services", _user_services)

    # --- deliverability reads --------------------------------------------------------------

    async def funnel(self, campaign_id: str) -> Funnel:
        return await self.fetch(f"/campaigns/{campaign_id}/funnel", _funnel)

    async def reputation(self, service_id: str) -> Reputation:
        return await self.fetch(f"/services/{service_id}/reputation", _reputation)

    async def suppression_count(self, user_id: str) -> int:
        """The size of a user's suppression list, as an admin sees it: the list's page total (the count
        route, /me/suppression-count, answers only for the caller, and users have no user screen)."""
        return (await self.fetch(f"/suppressions?user_id={user_id}&limit=1", _suppression_page)).total

    async def alerts(self, limit: int = 50) -> Page[AlertRow]:
        return await self.fetch(f"/alerts?limit={limit}", _alerts)

    async def domain_groups(self, limit: int = 100) -> Page[DomainGroupRow]:
        return await self.fetch(f"/domain-groups?limit={limit}", _domain_groups)

    async def send_rate_limit(self) -> SendRateLimitRow:
        return await self.fetch("/engine/send-rate-limit", _send_rate_limit)

    # --- admin writes (the API validates; its messages name the field) --------------------

    async def adjust_quota(self, user_id: str, delta: int, reason: str) -> None:
        await self.request("POST", f"/users/{user_id}/quota", json={"delta": delta, "reason": reason})

    async def map_services(self, user_id: str, service_ids: list[str]) -> None:
        await self.request("PUT", f"/users/{user_id}/services", json={"service_ids": service_ids})

    async def set_remaining(self, service_id: str, remaining: int, reason: str) -> None:
        await self.request("PUT", f"/services/{service_id}/remaining", json={"remaining": remaining, "reason": reason})

    async def events(self, last_event_id: str | None = None,
                     on_open: Callable[[], object] | None = None) -> AsyncIterator[LiveEvent]:
        """One SSE connection; yields events until the server closes it (raises Unreachable/ApiError)."""
        headers = self._headers() | {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        # No total timeout: the stream is long-lived; the server's 15 s pings keep the read alive.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=45)
        try:
            async with self.session.get(self._url("/events"), headers=headers, timeout=timeout) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    try:
                        err = _envelope.decode(raw).error or {}
                    except msgspec.DecodeError:
                        err = {}
                    raise ApiError(resp.status, str(err.get("code", f"HTTP_{resp.status}")),
                                   str(err.get("message", "event stream refused")))
                if on_open is not None:
                    on_open()
                parser = SseParser()
                async for line in resp.content:
                    event = parser.feed(line.decode("utf-8", "replace").rstrip("\r\n"))
                    if event is not None:
                        yield event
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        except RuntimeError as exc:
            # aiohttp's reader says "Connection closed." when the connection (or the whole
            # session, as the dashboard quits) went away under a read in progress.
            raise Unreachable(str(exc)) from exc


class SseParser:
    """Line-by-line Server-Sent Events parser (id / event / data fields, blank line dispatches)."""

    def __init__(self) -> None:
        self._id = ""
        self._kind = ""
        self._data: list[str] = []

    def feed(self, line: str) -> LiveEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment / keep-alive ping
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            self._id = value
        elif field == "event":
            self._kind = value
        elif field == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> LiveEvent | None:
        data, kind, self._data, self._kind = "\n".join(self._data), self._kind, [], ""
        if not data:
            return None
        try:
            event = _event.decode(data)
        except msgspec.DecodeError:
            return LiveEvent(kind=kind or "message", at="", message=data[:200], id=self._id)
        return msgspec.structs.replace(event, id=self._id, kind=event.kind or kind)

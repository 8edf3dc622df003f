"""Pages of one overview snapshot: the lists filtered and sliced in memory.

The snapshot is built once per scope and second (OverviewCache) and every page and filter of
every client is cut from it, so paging costs no query and the pages of one refresh agree.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import msgspec

from engine.live.overview import CampaignView, Overview, ServiceLiveState, ServiceView, UserView
from engine.store.rows import Page

T = TypeVar("T")


def _page(items: Sequence[T], limit: int, offset: int) -> Page[T]:
    return Page(items=list(items[offset:offset + limit]), total=len(items), limit=limit, offset=offset)


def _has(text: str, q: str | None) -> bool:
    return q is None or q.casefold() in text.casefold()


def first_pages(snapshot: Overview, limit: int) -> Overview:
    """The snapshot with each list cut to its first `limit` items (the totals say how many there are)."""
    return msgspec.structs.replace(snapshot, services=snapshot.services[:limit],
                                   campaigns=snapshot.campaigns[:limit], users=snapshot.users[:limit])


def services_page(snapshot: Overview, limit: int, offset: int, state: ServiceLiveState | None = None,
                  q: str | None = None) -> Page[ServiceView]:
    """Services by name; `state` and a name substring (`q`, any case) filter."""
    return _page([s for s in snapshot.services if (state is None or s.state == state) and _has(s.name, q)],
                 limit, offset)


def campaigns_page(snapshot: Overview, limit: int, offset: int, status: str | None = None,
                   q: str | None = None) -> Page[CampaignView]:
    """Campaigns in the overview's order; `status` and a substring of the name or owner filter."""
    return _page([c for c in snapshot.campaigns
                  if (status is None or c.status == status) and (_has(c.name, q) or _has(c.owner, q))], limit, offset)


def users_page(snapshot: Overview, limit: int, offset: int, q: str | None = None) -> Page[UserView]:
    """Users by name; a username substring (`q`, any case) filters."""
    return _page([u for u in snapshot.users if _has(u.username, q)], limit, offset)

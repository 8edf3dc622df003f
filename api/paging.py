"""Paging parameters shared by every list route."""

from __future__ import annotations

from typing import Annotated

import msgspec

Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


class PageQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    offset: Offset = 0

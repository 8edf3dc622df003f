"""Small types shared by the router and authentication."""

from __future__ import annotations

import uuid

import msgspec


class CurrentUser(msgspec.Struct, frozen=True):
    id: uuid.UUID
    username: str
    role: str
    # `read` (GET only) or `write`; a personal API token carries its own, a login session `write`.
    scope: str = "write"
    # The personal API token the call came with; None for a login session (JWT).
    token_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

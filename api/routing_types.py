"""Small types shared by the router and authentication."""

from __future__ import annotations

import uuid

import msgspec


class CurrentUser(msgspec.Struct, frozen=True):
    id: uuid.UUID
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

"""Per-recipient links and headers every message carries: the signed one-click unsubscribe
(RFC 8058) and, for SMTP services that want it, an open pixel and signed click redirects."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any
from urllib.parse import quote

import msgspec

from engine.domain.recipient_token import sign
from engine.providers.base import Message

_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


class RecipientLinks:
    """Adds `{{unsubscribe_url}}` to the template variables and finishes each message."""

    def __init__(self, key: bytes, public_base: str, *, tracking: bool = False):
        self._key = key
        self._base = public_base.rstrip("/") + "/api/v1/r"
        self.tracking = tracking

    def unsubscribe_url(self, subtask_id: uuid.UUID) -> str:
        return f"{self._base}/unsubscribe/{sign(self._key, 'u', subtask_id)}"

    def variables(self, subtask_id: uuid.UUID) -> dict[str, Any]:
        return {"unsubscribe_url": self.unsubscribe_url(subtask_id)}

    def finish(self, message: Message, subtask_id: uuid.UUID, *, track: bool = False) -> Message:
        """The footer link when the template has none, the List-Unsubscribe headers, tracking."""
        url = self.unsubscribe_url(subtask_id)
        body_html, text = message.html, message.text
        if body_html and url not in body_html:
            body_html += f'<p style="font-size:12px;color:#888"><a href="{html.escape(url)}">Unsubscribe</a></p>'
        if text and url not in text:
            text += f"\n\n--\nUnsubscribe: {url}\n"
        if track and self.tracking and body_html:
            body_html = self._track(body_html, subtask_id)
        headers = {**message.headers, "List-Unsubscribe": f"<{url}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        return msgspec.structs.replace(message, html=body_html, text=text, headers=headers)

    def _track(self, body_html: str, subtask_id: uuid.UUID) -> str:
        """Click links through the signed redirect (the unsubscribe link excepted), plus a pixel."""
        unsubscribe = html.escape(self.unsubscribe_url(subtask_id))

        def redirect(m: re.Match[str]) -> str:
            target = html.unescape(m.group(1))
            if m.group(1) == unsubscribe:
                return m.group(0)
            token = sign(self._key, "c", subtask_id, target)
            return f'href="{self._base}/click/{token}?u={html.escape(quote(target, safe=""))}"'

        pixel = f'<img src="{self._base}/open/{sign(self._key, "o", subtask_id)}" width="1" height="1" alt="">'
        return _HREF.sub(redirect, body_html) + pixel

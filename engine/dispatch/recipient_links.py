"""Per-recipient links and headers every message carries: the signed one-click unsubscribe
(RFC 8058) and, for SMTP services that want it, an open pixel and signed click redirects."""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import quote

import msgspec

from engine.domain.recipient_token import TokenSigner
from engine.providers.base import Message

_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


class RecipientLinks:
    """Gives each recipient's unsubscribe URL (the template's `{{unsubscribe_url}}`) and finishes
    each message with it. The URL is signed once per message and passed along."""

    def __init__(self, key: bytes, public_base: str, *, tracking: bool = False):
        self._signer = TokenSigner(key)
        self._base = public_base.rstrip("/") + "/api/v1/r"
        self._unsubscribe = self._base + "/unsubscribe/"
        self.tracking = tracking

    def unsubscribe_url(self, subtask_id: uuid.UUID) -> str:
        return self._unsubscribe + self._signer.sign("u", subtask_id)

    def finish(self, message: Message, subtask_id: uuid.UUID, url: str, *, track: bool = False) -> Message:
        """The footer link when the template has none, the List-Unsubscribe headers, tracking;
        `url` is the recipient's `unsubscribe_url`, the one the template was rendered with."""
        body_html, text = message.html, message.text
        if body_html and url not in body_html:
            body_html += f'<p style="font-size:12px;color:#888"><a href="{html.escape(url)}">Unsubscribe</a></p>'
        if text and url not in text:
            text += f"\n\n--\nUnsubscribe: {url}\n"
        if track and self.tracking and body_html:
            body_html = self._track(body_html, subtask_id, url)
        headers = {**message.headers, "List-Unsubscribe": f"<{url}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        return msgspec.structs.replace(message, html=body_html, text=text, headers=headers)

    def _track(self, body_html: str, subtask_id: uuid.UUID, url: str) -> str:
        """Click links through the signed redirect (the unsubscribe link excepted), plus a pixel."""
        unsubscribe = html.escape(url)
        sign = self._signer.sign

        def redirect(m: re.Match[str]) -> str:
            target = html.unescape(m.group(1))
            if m.group(1) == unsubscribe:
                return m.group(0)
            token = sign("c", subtask_id, target)
            return f'href="{self._base}/click/{token}?u={html.escape(quote(target, safe=""))}"'

        pixel = f'<img src="{self._base}/open/{sign("o", subtask_id)}" width="1" height="1" alt="">'
        return _HREF.sub(redirect, body_html) + pixel

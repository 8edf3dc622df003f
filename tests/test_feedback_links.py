"""Per-recipient links in messages: the unsubscribe footer and headers, and SMTP services' own
open pixel and signed click redirects feeding the same events."""

from __future__ import annotations

import uuid

from api.feedback_deps import link_key
from engine.dispatch.recipient_links import RecipientLinks
from engine.domain.recipient_token import TokenSigner, sign, verify
from engine.providers.base import Message
from tests.conftest import Api
from tests.test_feedback_webhooks import _sent_subtask


def _message(html: str, text: str = "hi") -> Message:
    return Message(subtask_id="s", campaign_id="c", from_address="a@b.c", to="r@x.org", subject="s",
                   html=html, text=text)


def test_footer_is_appended_only_when_the_template_lacks_the_link() -> None:
    links = RecipientLinks(b"k" * 32, "https://edm.example.com/", tracking=True)
    sid = uuid.uuid4()
    url = links.unsubscribe_url(sid)
    assert url.startswith("https://edm.example.com/api/v1/r/unsubscribe/")
    plain = links.finish(_message("<p>hello</p>"), sid, url)
    assert url in plain.html and url in plain.text
    assert plain.headers == {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    own = links.finish(_message(f'<a href="{url}">bye</a>', f"bye: {url}"), sid, url)
    assert own.html.count(url) == 1 and own.text.count(url) == 1
    tracked = links.finish(_message('<a href="https://shop.example/x?a=1&amp;b=2">shop</a>'), sid, url, track=True)
    assert "/api/v1/r/click/" in tracked.html and "/api/v1/r/open/" in tracked.html
    assert 'href="https://shop.example' not in tracked.html
    assert url in tracked.html  # the unsubscribe link itself is not redirected


def test_the_engine_signer_gives_the_same_tokens_as_sign() -> None:
    """The engine signs links with precomputed HMAC states; the API verifies them with `verify`."""
    sid = uuid.uuid4()
    for key in (b"k" * 32, b"", b"x" * 64, bytes(range(200))):  # short, empty, one block, hashed first
        signer = TokenSigner(key)
        for purpose, extra in (("u", ""), ("o", ""), ("c", "https://shop.example/x?a=1&b=2")):
            token = signer.sign(purpose, sid, extra)
            assert token == sign(key, purpose, sid, extra)
            assert verify(key, purpose, token, extra) == sid
        assert verify(key, "o", signer.sign("u", sid)) is None


async def test_open_pixel_and_click_redirect_record_events(admin: Api, deps) -> None:
    _, campaign, subtask, _, api = await _sent_subtask(deps, admin)
    key = link_key(deps)
    client = admin.client
    pixel = await client.get(f"/api/v1/r/open/{sign(key, 'o', subtask)}")
    assert pixel.status == 200 and pixel.content_type == "image/gif"
    target = "https://shop.example/x?a=1&b=2"
    for _ in range(2):  # a second click on the same link counts once
        resp = await client.get(f"/api/v1/r/click/{sign(key, 'c', subtask, target)}", params={"u": target},
                                allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == target
    # A signed click cannot be pointed elsewhere (no open redirect).
    resp = await client.get(f"/api/v1/r/click/{sign(key, 'c', subtask, target)}",
                            params={"u": "https://evil.example/"}, allow_redirects=False)
    assert resp.status == 404
    bad = await client.get(f"/api/v1/r/open/{sign(b'x' * 32, 'o', subtask)}")
    assert bad.status == 200  # a pixel always answers, records nothing
    funnel = await api.ok("GET", f"/campaigns/{campaign}/funnel")
    assert (funnel["opened"], funnel["clicked"]) == (1, 1)
    assert await deps.pool.fetchval("SELECT count(*) FROM delivery_events") == 2


def test_smtp_and_engagelab_carry_the_unsubscribe_headers() -> None:
    from engine.providers.smtp import build_mime

    links = RecipientLinks(b"k" * 32, "https://edm.example.com")
    sid = uuid.uuid4()
    message = links.finish(_message("<p>x</p>"), sid, links.unsubscribe_url(sid))
    mime, _ = build_mime(message)
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mime["List-Unsubscribe"] == message.headers["List-Unsubscribe"]

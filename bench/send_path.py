"""The send path's Python per message, in process (no database, no network): what `Sender._render`
does for one bound subtask — the contact's variables, the signed unsubscribe link, the render,
the message with its footer and List-Unsubscribe headers.

    .venv/bin/python bench/send_path.py [--messages 20000] [--rounds 7]

Prints CPU microseconds per message (the best of the rounds: the machine is shared) for the
benchmarks' template (`bench/dispatch.py`'s: a literal text part) and for one whose three parts
all depend on the recipient, beside the cost of one render alone as the anchor of the same run.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Callable

import support  # noqa: F401  (puts the repository first on the path)

from engine.dispatch.recipient_links import RecipientLinks
from engine.providers.base import Message, request_id_of
from engine.templating.rendering import Compiled, compile_template, contact_vars, render


def best_us(fn: Callable[[uuid.UUID], object], ids: list[uuid.UUID], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        for i in ids:
            fn(i)
        best = min(best, (time.process_time() - t) / len(ids) * 1e6)
    return best


def main(args: argparse.Namespace) -> None:
    links = RecipientLinks(b"k" * 32, "https://edm.example.com")
    ids = [uuid.uuid4() for _ in range(args.messages)]
    templates = {
        "bench template": compile_template("Hi {{ name }}", "<p>Hi {{ name }}</p>", "Hi"),
        "every part variable": compile_template(
            "Hi {{ name }}", "<p>Hi {{ name }} from {{ city }}</p><a href=\"{{ unsubscribe_url }}\">x</a>",
            "Hello {{ name }}"),
    }

    def message(compiled: Compiled) -> Callable[[uuid.UUID], object]:
        def one(i: uuid.UUID) -> object:
            variables = contact_vars("r1@example.test", "R 1", {"city": "Paris"})
            variables["unsubscribe_url"] = url = links.unsubscribe_url(i)
            rendered = render(compiled, variables)
            sid = str(i)
            m = Message(subtask_id=sid, campaign_id="c", from_address="news@mail.example.test",
                        to="r1@example.test", subject=rendered.subject, html=rendered.html, text=rendered.text,
                        timeout=30.0, request_id=request_id_of(sid, 1))
            return links.finish(m, i, url)
        return one

    for name, compiled in templates.items():
        whole = best_us(message(compiled), ids, args.rounds)
        alone = best_us(lambda i, c=compiled: render(c, {"name": "R 1", "city": "Paris",  # type: ignore[misc]
                                                         "unsubscribe_url": "u"}), ids, args.rounds)
        print(f"{name:20}: {whole:5.1f} us per message (render + link + message); the render alone {alone:5.1f} us")
    print(f"link signing: {best_us(links.unsubscribe_url, ids, args.rounds):5.1f} us per link")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=7)
    main(p.parse_args())

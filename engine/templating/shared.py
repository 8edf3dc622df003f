"""Campaign templates held by the engine: compiled on first use, one compiled copy per source text.

A compiled Jinja2 template costs tens of kilobytes; ten thousand running campaigns that each held
their own (most of them never sending in a given hour, many built from the same text) were the
largest part of the engine's memory. A campaign keeps its templates' sources until its first
recipient needs one; campaigns whose template texts are the same share one `Compiled`, freed
when the last of them is gone.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from typing import Iterator, Mapping

from engine.domain.errors import TemplateError
from engine.templating.rendering import Compiled, compile_template

log = logging.getLogger("edm.engine.templates")

Sources = tuple[str, str, str]  # subject, html body, text body


class SharedCompiler:
    """One `Compiled` per distinct (subject, html, text), alive while some campaign holds it."""

    def __init__(self) -> None:
        self._by_source: weakref.WeakValueDictionary[Sources, Compiled] = weakref.WeakValueDictionary()

    def compile(self, sources: Sources) -> Compiled:
        hit = self._by_source.get(sources)
        if hit is None:
            hit = self._by_source[sources] = compile_template(*sources)
        return hit

    def __len__(self) -> int:
        return len(self._by_source)


class CampaignTemplates(Mapping[uuid.UUID, Compiled]):
    """A campaign's templates by id; each is compiled when its first recipient is rendered.

    A template that does not compile raises its TEMPLATE_ERROR for every recipient that uses it
    (compiled once: the error is kept, not recompiled per recipient).
    """

    __slots__ = ("_campaign_id", "_compiler", "_entries")

    def __init__(self, campaign_id: uuid.UUID, compiler: SharedCompiler,
                 sources: Mapping[uuid.UUID, Sources]) -> None:
        self._campaign_id = campaign_id
        self._compiler = compiler
        # Sources until first use, then the compiled template (or the error compiling it).
        self._entries: dict[uuid.UUID, Sources | Compiled | TemplateError] = dict(sources)

    def __getitem__(self, template_id: uuid.UUID) -> Compiled:
        entry = self._entries[template_id]  # KeyError: not one of the campaign's templates
        if isinstance(entry, tuple):
            try:
                entry = self._compiler.compile(entry)
            except TemplateError as exc:
                log.error("template_unusable campaign=%s template=%s error=%s", self._campaign_id, template_id,
                          exc.message)
                entry = exc
            self._entries[template_id] = entry
        if isinstance(entry, TemplateError):
            raise entry.with_traceback(None)  # raised again per recipient: no growing traceback
        return entry

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

"""Campaign templates: compiled on first use, one compiled copy per source text, freed with the
last campaign that holds it; a template that does not compile fails each recipient that uses it."""

from __future__ import annotations

import gc
import uuid

import pytest

from engine.domain.errors import TemplateError
from engine.templating.rendering import render
from engine.templating.shared import CampaignTemplates, SharedCompiler

HELLO = ("Hi {{ name }}", "<p>Hello {{ name }}</p>", "Hello {{ name }}")


def test_campaigns_with_the_same_text_share_one_compiled_template_made_on_first_use() -> None:
    compiler = SharedCompiler()
    t1, t2, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    a = CampaignTemplates(uuid.uuid4(), compiler, {t1: HELLO, other: ("Other", "", "Bye")})
    b = CampaignTemplates(uuid.uuid4(), compiler, {t2: HELLO})
    assert len(compiler) == 0  # nothing compiled until a recipient needs it
    assert a[t1] is b[t2]
    assert len(compiler) == 1
    assert render(a[t1], {"name": "Ann"}).html == "<p>Hello Ann</p>"
    assert set(a) == {t1, other} and len(a) == 2
    with pytest.raises(KeyError):
        a[uuid.uuid4()]


def test_a_compiled_template_is_freed_with_the_last_campaign_that_holds_it() -> None:
    compiler = SharedCompiler()
    t = uuid.uuid4()
    a = CampaignTemplates(uuid.uuid4(), compiler, {t: HELLO})
    a[t]
    assert len(compiler) == 1
    del a
    gc.collect()
    assert len(compiler) == 0


def test_a_template_that_does_not_compile_fails_every_recipient_that_uses_it() -> None:
    compiler = SharedCompiler()
    bad, good = uuid.uuid4(), uuid.uuid4()
    c = CampaignTemplates(uuid.uuid4(), compiler, {bad: ("Hi {{ name ", "", "x"), good: HELLO})
    for _ in range(3):
        with pytest.raises(TemplateError, match="subject"):
            c[bad]
    assert render(c[good], {"name": "Bo"}).text == "Hello Bo"

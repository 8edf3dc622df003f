"""Template rendering: variables, escaping, missing variables, the sandbox and the compile cache."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from jinja2.sandbox import SecurityError

from engine.domain.errors import TemplateError
from engine.templating.sandbox import MAX_STEPS, BudgetExceeded, WorkBudget
from engine.templating.rendering import (
    MAX_OUTPUT,
    CompiledCache,
    compile_template,
    contact_vars,
    render,
)


def one(subject: str = "s", html: str = "", text: str = "", **variables: object) -> tuple[str, str, str]:
    r = render(compile_template(subject, html, text), variables)
    return r.subject, r.html, r.text


def test_variables_and_custom_fields() -> None:
    v = contact_vars("ann@example.com", "Ann", {"city": "Paris", "points": 3, "name": "not-this"})
    r = render(compile_template("Hi {{ name }}", "<p>{{ email }} in {{ city }}: {{ points + 1 }}</p>",
                                "{{ name }}/{{ city }}"), v)
    assert (r.subject, r.html, r.text) == ("Hi Ann", "<p>ann@example.com in Paris: 4</p>", "Ann/Paris")


def test_parts_without_template_syntax_render_once_and_as_jinja_would() -> None:
    # Literal parts are rendered at compile time; the output must be what rendering gives
    # (line endings normalised, HTML text left as written, the subject folded).
    c = compile_template("Big\r\nnews ", "<p>a & b</p>\r\n", "line 1\r\nline 2\n")
    assert c.literals == ("Big news", "<p>a & b</p>\n", "line 1\nline 2\n")
    r = render(c, {"name": "Ann"})
    assert (r.subject, r.html, r.text) == ("Big news", "<p>a & b</p>\n", "line 1\nline 2\n")
    # A part with any template syntax depends on the recipient: rendered per message.
    mixed = compile_template("Hi {{ name }}", "<p>x</p>{# note #}", "")
    assert mixed.literals == (None, None, None)
    assert render(mixed, {"name": "Ann"}).subject == "Hi Ann"


def test_html_body_is_escaped_subject_and_text_are_not() -> None:
    v = contact_vars("a@example.com", "<b>Tom & Jerry</b>", {})
    r = render(compile_template("{{ name }}", "<p>{{ name }}</p>", "{{ name }}"), v)
    assert r.html == "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>"
    assert r.subject == r.text == "<b>Tom & Jerry</b>"


def test_missing_variable_renders_empty() -> None:
    assert one("[{{ city }}]", "<i>{{ city }}|{{ city.street }}|{{ city['x'] }}</i>", "{{ nope }}") == \
        ("[]", "<i>||</i>", "")
    assert one("{% if vip %}VIP{% else %}regular{% endif %}")[0] == "regular"
    assert one("{% for x in items %}{{ x }}{% endfor %}.")[0] == "."
    assert one("Hi {{ city | default('there') }}")[0] == "Hi there"


def test_arithmetic_on_a_missing_variable_is_a_render_error() -> None:
    compiled = compile_template("{{ points + 1 }}", "", "x")  # fine at save time: depends on the data
    with pytest.raises(TemplateError) as e:
        render(compiled, {"name": "a"})
    assert e.value.field == "subject" and e.value.details["line"] == 1
    assert render(compiled, {"points": 1}).subject == "2"


def test_subject_is_folded_onto_one_line() -> None:
    assert one("Hi {{ name }}!", name="Eve\r\nBcc: x@evil")[0] == "Hi Eve Bcc: x@evil!"


@pytest.mark.parametrize("part", ["subject", "html_body", "text_body"])
def test_syntax_errors_name_the_part_and_line(part: str) -> None:
    parts = {"subject": "ok", "html_body": "ok", "text_body": "ok"}
    parts[part] = "line one\nline two {{ name }\n"
    with pytest.raises(TemplateError) as e:
        compile_template(parts["subject"], parts["html_body"], parts["text_body"])
    assert e.value.code == "TEMPLATE_ERROR" and e.value.field == part and e.value.details["line"] == 2
    assert "line 2" in e.value.message


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ name['__class__'] }}",
    "{{ name | attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% set k = '__cla' ~ 'ss__' %}{{ name[k] }}",  # only the sandbox sees this one, at run time
    "{{ self._TemplateReference__context }}",
    "{{ name.format(1) }}",
])
def test_reaching_python_internals_is_a_template_error(source: str) -> None:
    with pytest.raises(TemplateError) as e:
        compile_template("s", source, "")
    assert e.value.field == "html_body"
    assert isinstance(e.value.__cause__, SecurityError)


@pytest.mark.parametrize("source", [
    "{{ 'x' * 100000000 }}",
    "{{ [1] * 100000000 }}",
    "{{ range(100000000) | list }}",
    "{{ 9 ** 999999 }}",
    "{{ '%999999999s' % 'a' }}",
    "{{ '%*s' | format(999999999, 'a') }}",
    "{{ name.center(999999999) }}",
    "{{ name | center(999999999) }}",
    "{{ 'a\tb'.expandtabs(999999999) }}",
])
def test_size_guards_refuse_huge_values(source: str) -> None:
    with pytest.raises(TemplateError) as e:
        compile_template("s", "", source)
    assert e.value.field == "text_body" and isinstance(e.value.__cause__, SecurityError)


def test_output_is_capped_at_render_time() -> None:
    compiled = compile_template("s", "", "{% for i in range(n) %}{{ 'x' * 1000 }}{% endfor %}")
    assert len(render(compiled, {"n": 10}).text) == 10_000
    with pytest.raises(TemplateError) as e:
        render(compiled, {"n": MAX_OUTPUT // 1000 + 1})
    assert e.value.field == "text_body"


def test_empty_bodies_render_empty() -> None:
    r = render(compile_template("s", "", "text only"), {})
    assert (r.html, r.text) == ("", "text only")


def test_cache_reuses_until_updated_at_moves() -> None:
    cache = CompiledCache(max_entries=2)
    tid, t0 = uuid.uuid4(), datetime(2026, 1, 1, tzinfo=timezone.utc)
    first = cache.get(tid, t0, "A {{ name }}", "", "x")
    assert cache.get(tid, t0, "ignored: the stamp did not move", "", "x") is first
    newer = cache.get(tid, t0 + timedelta(microseconds=1), "B {{ name }}", "", "x")
    assert newer is not first and render(newer, {"name": "n"}).subject == "B n"
    assert len(cache) == 1
    cache.get(uuid.uuid4(), t0, "s", "", "x")
    cache.get(uuid.uuid4(), t0, "s", "", "x")
    assert len(cache) == 2  # least recently used evicted
    with pytest.raises(TemplateError):
        cache.get(uuid.uuid4(), t0, "{{", "", "x")


def test_a_loop_bound_from_a_contact_field_passes_the_save_and_fails_that_recipient_only() -> None:
    compiled = compile_template("s", "{% for a in range(n) %}{% for b in range(n) %}.{% endfor %}{% endfor %}", "")
    assert render(compiled, contact_vars("a@example.com", "A", {"n": 3})).html == "." * 9
    with pytest.raises(TemplateError) as e:
        render(compiled, contact_vars("b@example.com", "B", {"n": 10000}))
    assert e.value.code == "TEMPLATE_ERROR" and e.value.field == "html_body"
    assert isinstance(e.value.__cause__, BudgetExceeded)


def test_the_budget_is_shared_by_the_three_parts_of_one_email() -> None:
    # Each part alone is within budget; together they are not.
    n = MAX_STEPS // 4 + 10  # two loops of n per part
    loop = f"{{% for i in range({n}) %}}{{% endfor %}}{{% for i in range({n}) %}}{{% endfor %}}"
    compile_template(loop, "", "")
    with pytest.raises(TemplateError) as e:
        render(compile_template(loop, loop, ""), {})
    assert isinstance(e.value.__cause__, BudgetExceeded)


def test_the_budget_also_has_a_deadline() -> None:
    budget = WorkBudget(steps=10**9, seconds=0.0)
    with pytest.raises(BudgetExceeded, match="longer than"):
        for _ in range(100):
            budget.step()

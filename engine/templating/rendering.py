"""Template rendering: compile a template's three parts once, then render them per recipient.

Variables are `name`, `email` and every custom field of the contact (`{{ city }}`); `name` and
`email` win over custom fields of the same name. A variable the contact does not have renders
as empty text (see `BlankUndefined`); `{{ city | default('there') }}` gives a fallback. The HTML
body is rendered with autoescaping on, the subject and the text body without HTML escaping; the
subject is folded onto one line. Templates run in `GuardedSandbox` (Jinja2's immutable
sandbox): reaching Python internals raises SecurityError, reported as TEMPLATE_ERROR.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SecurityError

from engine.domain.errors import TemplateError
from engine.templating.sandbox import BudgetExceeded, GuardedSandbox, count_loop_steps, work_budget

Part = Literal["subject", "html_body", "text_body"]
# Largest rendered part, in characters; a template that grows past it is stopped.
MAX_OUTPUT = 2_000_000

_HTML = GuardedSandbox(autoescape=True)
_PLAIN = GuardedSandbox(autoescape=False)
_LINE_BREAKS = re.compile(r"[\r\n]+")
# What a save-time trial render feeds the template: enough to exercise unconditional code.
_SAMPLE = {"name": "Sample Name", "email": "sample@example.com"}


@dataclass(frozen=True, slots=True, weakref_slot=True)  # shared weakly between campaigns (shared.py)
class Compiled:
    """A template's parts, ready to render; an empty body part is None."""

    subject: Template
    html: Template | None
    text: Template | None
    # Each part's globals flattened once (see `_render_part`), in part order.
    scopes: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
    # A part without template syntax renders the same for every recipient: its text, rendered
    # once at compile time (subject already folded); None for a part that depends on the recipient.
    literals: tuple[str | None, str | None, str | None] = (None, None, None)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


def contact_vars(email: str, name: str, fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """The variables one contact offers to a template."""
    out = dict(fields or {})
    out["name"] = name
    out["email"] = email
    return out


def _internal_reference(tree: nodes.Template) -> str | None:
    """The first `x._private` / `x['__private']` / `x|attr('_private')` the template names, if any."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        match node:
            case nodes.Getattr(attr=str(attr)) if attr.startswith("_"):
                return attr
            case nodes.Getitem(arg=nodes.Const(value=str(key))) if key.startswith("_"):
                return key
            case nodes.Filter(name="attr", args=[nodes.Const(value=str(key)), *_]) if key.startswith("_"):
                return key
    return None


_OTHER_TEMPLATES = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "import",
                    nodes.Extends: "extends"}


def _unsupported(tree: nodes.Template) -> str | None:
    """Why the template cannot be saved: it names other templates (there are none to load, so
    it would fail at send time), or a macro calls itself (unbounded recursion)."""
    for node in tree.find_all(tuple(_OTHER_TEMPLATES)):
        return f"'{{% {_OTHER_TEMPLATES[type(node)]} %}}' is not supported: a template stands alone"
    macros = {m.name: m for m in tree.find_all(nodes.Macro)}
    calls = {name: {c.node.name for c in m.find_all(nodes.Call)
                    if isinstance(c.node, nodes.Name) and c.node.name in macros}
             for name, m in macros.items()}
    for start in macros:  # a cycle in the macros' call graph
        seen, frontier = set(), set(calls[start])
        while frontier:
            name = frontier.pop()
            if name == start:
                return f"macro {start!r} calls itself (recursive macros are not supported)"
            if name not in seen:
                seen.add(name)
                frontier |= calls[name]
    return None


def _compile_part(part: Part, source: str) -> Template:
    env = _HTML if part == "html_body" else _PLAIN
    try:
        tree = env.parse(source)
        internal = _internal_reference(tree)
        if internal is not None:
            raise SecurityError(f"access to internal attribute {internal!r} is not allowed")
        unsupported = _unsupported(tree)
        if unsupported is not None:
            raise TemplateError(f"{part}: {unsupported}", field=part)
        compiled = env.from_string(count_loop_steps(tree))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{part}: line {exc.lineno}: {exc.message}", field=part,
                            details={"line": exc.lineno}) from exc
    except SecurityError as exc:
        raise TemplateError(f"{part}: {exc}", field=part) from exc
    _trial(part, compiled)
    return compiled


def _trial(part: Part, template: Template) -> None:
    """Render once with sample data so unconditional unsafe code is refused at save time.

    Only sandbox refusals count here: other errors (arithmetic on a missing field, say) depend
    on the contact's data and show up in a preview or as that recipient's failure.
    """
    try:
        _render_reported(part, template, _SAMPLE)
    except TemplateError as exc:
        if isinstance(exc.__cause__, SecurityError):
            raise


def compile_template(subject: str, html_body: str, text_body: str) -> Compiled:
    """Compile the three parts; raises TEMPLATE_ERROR naming the part (and line) that is wrong."""
    s = _compile_part("subject", subject)
    h = _compile_part("html_body", html_body) if html_body else None
    t = _compile_part("text_body", text_body) if text_body else None
    subject_text = _literal("subject", s, subject)
    if subject_text is not None:
        subject_text = _fold(subject_text)
    return Compiled(s, h, t, (_scope(s), _scope(h), _scope(t)),
                    (subject_text, _literal("html_body", h, html_body), _literal("text_body", t, text_body)))


def _literal(part: Part, template: Template | None, source: str) -> str | None:
    """The part's text when it has no template syntax (every delimiter starts with `{`), else None."""
    if template is None or "{" in source:
        return None
    # Rendered rather than copied: Jinja normalises the source's line endings.
    return _render_reported(part, template, {})


def _fold(subject: str) -> str:
    return _LINE_BREAKS.sub(" ", subject).strip()


def _scope(template: Template | None) -> dict[str, Any]:
    return dict(template.globals) if template is not None else {}


def _render_part(part: Part, template: Template, variables: Mapping[str, Any], scope: Mapping[str, Any]) -> str:
    """One part for one recipient, inside the caller's work budget.

    The fast path runs the compiled template's own render function (the same sandboxed code
    `generate` runs) in a context built from globals flattened at compile time: Jinja's
    `new_context` merges a ChainMap of globals on every call, which was most of the cost. On
    any error the part is rendered again through `generate`, whose traceback rewriting gives
    the template line of the error (rendering is deterministic, so it fails the same way).
    """
    env = template.environment
    ctx = env.context_class(env, {**scope, **variables}, template.name, template.blocks)
    size = 0
    chunks: list[str] = []
    try:
        for chunk in template.root_render_func(ctx):
            size += len(chunk)
            if size > MAX_OUTPUT:
                break
            chunks.append(chunk)
    except BudgetExceeded as exc:
        # Not rendered again for its line: that would double the time spent.
        raise TemplateError(f"{part}: {exc}", field=part) from exc
    except Exception:
        return _render_reported(part, template, variables)
    if size > MAX_OUTPUT:
        raise TemplateError(f"{part}: rendered text is longer than {MAX_OUTPUT} characters", field=part)
    return "".join(chunks)


def _render_reported(part: Part, template: Template, variables: Mapping[str, Any]) -> str:
    """Render through Jinja's public `generate`, turning any failure into TEMPLATE_ERROR."""
    size = 0
    chunks: list[str] = []
    try:
        with work_budget():
            for chunk in template.generate(variables):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateError(f"{part}: rendered text is longer than {MAX_OUTPUT} characters",
                                        field=part)
                chunks.append(chunk)
    except TemplateError:
        raise
    except Exception as exc:  # whatever the template did wrong, it is the template's error
        line = _template_line(exc)
        where = f"line {line}: " if line else ""
        raise TemplateError(f"{part}: {where}{exc}", field=part, details={"line": line} if line else None) from exc
    return "".join(chunks)


def _template_line(exc: BaseException) -> int | None:
    """The template line Jinja2 mapped into the traceback, if any."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(compiled: Compiled, variables: Mapping[str, Any]) -> Rendered:
    """Render one recipient's email; raises TEMPLATE_ERROR naming the part that failed."""
    with work_budget():  # one budget for the three parts: the event loop waits for all of them
        return _render_all(compiled, variables)


def _render_all(compiled: Compiled, variables: Mapping[str, Any]) -> Rendered:
    scopes, (subject, html, text) = compiled.scopes, compiled.literals
    if subject is None:
        subject = _fold(_render_part("subject", compiled.subject, variables, scopes[0]))
    if html is None:
        html = _render_part("html_body", compiled.html, variables, scopes[1]) if compiled.html is not None else ""
    if text is None:
        text = _render_part("text_body", compiled.text, variables, scopes[2]) if compiled.text is not None else ""
    return Rendered(subject, html, text)


class CompiledCache:
    """Compiled templates by id, valid while the template's `updated_at` is unchanged (LRU-bounded).

    Every template update moves `updated_at` forward, so a stale entry is replaced on first use.
    """

    def __init__(self, max_entries: int = 1024):
        self._max = max_entries
        self._entries: OrderedDict[uuid.UUID, tuple[datetime, Compiled]] = OrderedDict()

    def get(self, template_id: uuid.UUID, updated_at: datetime, subject: str, html_body: str,
            text_body: str) -> Compiled:
        hit = self._entries.get(template_id)
        if hit is not None and hit[0] == updated_at:
            self._entries.move_to_end(template_id)
            return hit[1]
        compiled = compile_template(subject, html_body, text_body)
        self._entries[template_id] = (updated_at, compiled)
        self._entries.move_to_end(template_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return compiled

    def __len__(self) -> int:
        return len(self._entries)

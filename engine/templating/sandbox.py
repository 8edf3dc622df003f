"""The Jinja2 environments templates run in: an immutable sandbox with size guards.

Jinja2's sandbox keeps templates away from Python internals (`__class__`, `__globals__`, ...) and
from mutating objects; it does not stop a template from building a huge value. The guards
below refuse the operations whose output size the template author chooses (`'x' * n`, `**`,
`%`-formatting widths, padding filters and methods, `range`) past fixed limits, so one bad
template cannot exhaust the engine's memory. Every refusal raises `SecurityError`.

Nor does it stop a template from computing for ever (`{% for a in range(10000) %}{% for b in
range(10000) %}`, or a loop bound taken from a contact field). Every loop iteration and every
call is one step of a work budget (`WorkBudget`): past `MAX_STEPS` steps, or past `MAX_SECONDS`
of rendering, the render stops with `BudgetExceeded` (a `SecurityError`), so one email never holds
the event loop for more than about `MAX_SECONDS`. Loops are counted by rewriting every `{% for %}`
of a parsed template to iterate through the `_edm_step` filter (`count_loop_steps`).
"""

from __future__ import annotations

import contextvars
import re
import time
from typing import Any, Callable, Iterable, Iterator

from jinja2 import ChainableUndefined, nodes, pass_eval_context
from jinja2.filters import do_center, do_format, do_indent, do_replace
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

# Largest string or sequence one operation may produce, in characters or items.
MAX_SIZE = 1_000_000
# Largest padding width (`center`, `ljust`, `%10s`, `indent`).
MAX_WIDTH = 10_000
# Longest `range()`: loops over ranges are for small lists in emails, not computation.
MAX_RANGE = 10_000
# Largest integer `**` may produce, in bits.
MAX_POWER_BITS = 10_000

# Loop iterations plus calls one email's render may take: real emails take a few hundred.
MAX_STEPS = 20_000
# Wall time one email's render may take: the event loop waits for it.
MAX_SECONDS = 0.05
# The clock is read every this many steps (a step itself costs well under a microsecond).
_CLOCK_EVERY = 32

_PRINTF_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
# str methods whose result size depends on an argument rather than on the string.
_SIZED_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "replace"})
# str.format pads to any width its spec names; the guarded `format` filter does the same job.
_DENIED_STR_METHODS = frozenset({"format", "format_map"})


class BlankUndefined(ChainableUndefined):
    """A variable the contact does not have: renders as '' and is falsy, empty and chainable.

    `{{ missing }}`, `{{ missing.x }}` and `{{ missing['x'] }}` all render as empty text, `{% if
    missing %}` is false and `{% for x in missing %}` loops zero times. Arithmetic on it
    (`{{ missing + 1 }}`) is still an error: a number that silently became 0 would be worse.
    """

    __slots__ = ()


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} exceeds the template size limits")


def _check_size(n: int, what: str) -> None:
    if n > MAX_SIZE:
        raise _refuse(what)


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise _refuse(what)


def _check_printf(fmt: str) -> None:
    """`'%*s' % (10**9, x)` or `'%999999999s'` would allocate the width; refuse large or starred ones."""
    for m in _PRINTF_WIDTH.finditer(fmt):
        for part in m.groups():
            if part == "*" or (part is not None and int(part) > MAX_WIDTH):
                raise _refuse("a %-format width")


def _check_replace(s: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str):
        _check_size((len(s) // max(len(old), 1) + 1) * len(new) + len(s), "replace()")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
            _check_size(len(seq) * n, "repetition")


def _check_power(base: Any, exp: Any) -> None:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0:
        if max(base.bit_length(), 1) * exp > MAX_POWER_BITS:
            raise _refuse("an exponent")


def _check_sized_method(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    match name:
        case "center" | "ljust" | "rjust" | "zfill":
            _check_width(args[0] if args else kwargs.get("width"), f"str.{name}()")
        case "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                _check_size(len(owner) + owner.count("\t") * size, "str.expandtabs()")
        case "replace":
            if len(args) >= 2:
                _check_replace(owner, args[0], args[1])


class BudgetExceeded(SecurityError):
    """The template did more work than one email may."""


class WorkBudget:
    """Steps and seconds left to one render (an email, or one part of a preview or a trial)."""

    __slots__ = ("steps", "deadline")

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS):
        self.steps = steps
        self.deadline = time.perf_counter() + seconds

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise BudgetExceeded(f"the template takes more than {MAX_STEPS} loop iterations and calls")
        if self.steps % _CLOCK_EVERY == 0 and time.perf_counter() > self.deadline:
            raise BudgetExceeded(f"the template takes longer than {int(MAX_SECONDS * 1000)} ms to render")


_budget: contextvars.ContextVar[WorkBudget | None] = contextvars.ContextVar("edm_template_budget", default=None)


class work_budget:  # noqa: N801 - used as a function: `with work_budget():`
    """A budget for the renders inside the block; an enclosing block's budget is kept (shared).

    A class rather than a generator-based context manager: it is entered once per email sent."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: contextvars.Token[WorkBudget | None] | None = None

    def __enter__(self) -> WorkBudget:
        current = _budget.get()
        if current is not None:
            return current
        budget = WorkBudget()
        self._token = _budget.set(budget)
        return budget

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _budget.reset(self._token)
            self._token = None


def _step() -> None:
    budget = _budget.get()
    if budget is None:
        raise SecurityError("templates render inside a work budget")  # a programming error
    budget.step()


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget.get()
    if budget is None:
        raise SecurityError("templates render inside a work budget")
    for item in iterable:
        budget.step()
        yield item


def count_loop_steps(tree: nodes.Template) -> nodes.Template:
    """Rewrite every `{% for x in it %}` to `{% for x in it|_edm_step %}`: each iteration is a step."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "_edm_step", [], [], None, None, lineno=loop.iter.lineno)
    return tree


def capped_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items in templates")
    return rng


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus size guards and a hard error on any unsafe attribute."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, *, autoescape: bool):
        super().__init__(autoescape=autoescape, undefined=BlankUndefined, keep_trailing_newline=True,
                         cache_size=0)
        self.globals.pop("lipsum", None)  # lipsum(n) generates n paragraphs
        self.globals["range"] = capped_range
        self.filters.update(_guarded_filters())

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if isinstance(getattr(value, "__self__", None), str) and getattr(value, "__name__", "") in _DENIED_STR_METHODS:
            raise SecurityError(f"str.{value.__name__}() is not available in templates; use the format filter")
        return super().wrap_str_format(value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # The stock sandbox returns an Undefined that only fails when used; a blank-rendering
        # Undefined would let `{{ x.__class__ }}` pass silently, so fail at the access itself.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        match operator:
            case "*":
                _check_repeat(left, right)
            case "**":
                _check_power(left, right)
            case "%":
                if isinstance(left, str):
                    _check_printf(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _step()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name in _SIZED_METHODS:
            _check_sized_method(owner, name, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _guarded_filters() -> dict[str, Callable[..., Any]]:
    def center(value: Any, width: int = 80) -> str:
        _check_width(width, "center")
        return do_center(value, width)

    def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        if isinstance(width, int):
            _check_width(width, "indent")
            _check_size(len(str(s)) + (str(s).count("\n") + 1) * width, "indent")
        return do_indent(s, width, first, blank)

    def format_(value: str, *args: Any, **kwargs: Any) -> str:
        _check_printf(str(value))
        return do_format(value, *args, **kwargs)

    @pass_eval_context
    def replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
        _check_replace(str(s), old, new)
        return do_replace(eval_ctx, s, old, new, count)

    return {"center": center, "indent": indent, "format": format_, "replace": replace, "_edm_step": _counted}

"""The two Liquid environments messages render in (§7.6): strict variables with a lenient `if` and
`default`, the built-in layouts as the only loadable templates, the `markdown` and `json` filters, our
custom tags, and resource limits on loops, output, assigned data and nesting.

`HTML_ENV` autoescapes every value a template outputs (email bodies); `TEXT_ENV` does not (subjects,
SMS, webhook bodies). Neither can read a file: the loader holds only the layouts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from io import StringIO
from typing import Any, ClassVar, TextIO

from liquid import BoundTemplate, DictLoader, Environment, FalsyStrictUndefined, Markup
from liquid import RenderContext as LiquidContext
from liquid.exceptions import LiquidError, OutputStreamLimitError
from liquid.extra.filters import JSON
from liquid.filter import with_environment
from liquid.output import LimitedStringIO
from markdown_it import MarkdownIt

from engine.messaging.liquid_tags import register_tags

LOOP_ITERATION_LIMIT = 100_000
OUTPUT_LIMIT = 1024 * 1024  # characters of rendered output
LOCAL_NAMESPACE_LIMIT = 2 * 1024 * 1024  # sys.getsizeof-bytes of everything `assign`ed / `capture`d

BASE_EMAIL_LAYOUT = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1.0" />
  <style type="text/css">{% block style %}{% endblock %}</style>
</head>
<body>{% block content %}{% endblock %}</body>
</html>"""

MARKDOWN_EMAIL_LAYOUT = (
    "{% layout 'base-email' %}{% block content %}{% capture md %}{% block md-content %}{% endblock %}"
    "{% endcapture %}{{ md | markdown }}{% endblock %}"
)

LAYOUTS = {"base-email": BASE_EMAIL_LAYOUT, "markdown-email": MARKDOWN_EMAIL_LAYOUT}


class LenientUndefined(FalsyStrictUndefined):
    """Strict everywhere except where LiquidJS's `lenientIf` is lenient.

    Outputting, iterating or filtering an undefined variable is an error; testing it in `if`, `unless`
    or `case` is falsy (it equals only nil); `default` replaces it (LiquidJS evaluates the left side of
    a leading `default` filter leniently).
    """

    force_liquid_default = True


class _LayoutLoader(DictLoader):
    """The built-in layouts, each parsed once per environment; every other name is not found."""

    def __init__(self) -> None:
        super().__init__(LAYOUTS)
        self._parsed: dict[str, BoundTemplate] = {}

    def load(
        self,
        env: Environment,
        name: str,
        *,
        globals: Mapping[str, object] | None = None,
        context: LiquidContext | None = None,
        **kwargs: object,
    ) -> BoundTemplate:
        template = self._parsed.get(name)
        if template is None:
            template = super().load(env, name, globals=globals, context=context, **kwargs)
            self._parsed[name] = template
        return template


class _CharacterLimitedOutput(LimitedStringIO):
    """An output buffer that counts characters: python-liquid's counts UTF-8 bytes, which costs an
    encode of every piece written, the largest single cost of rendering a typical email."""

    def write(self, text: str) -> int:
        self.size += len(text)
        if self.size > self.limit:
            raise OutputStreamLimitError("output stream limit reached", token=None)
        return StringIO.write(self, text)


class _LimitedContext(LiquidContext):
    def get_buffer(self, buf: TextIO | None = None) -> StringIO:
        # A nested buffer (capture, a layout block) gets what is left of the enclosing one's limit.
        used = buf.size if isinstance(buf, LimitedStringIO) else 0
        return _CharacterLimitedOutput(limit=OUTPUT_LIMIT - used)


class _LimitedTemplate(BoundTemplate):
    context_class = _LimitedContext

    def _get_buffer(self) -> StringIO:
        return _CharacterLimitedOutput(limit=OUTPUT_LIMIT)


class _LimitedEnvironment(Environment):
    template_class = _LimitedTemplate
    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATION_LIMIT
    output_stream_limit: ClassVar[int | None] = OUTPUT_LIMIT
    local_namespace_limit: ClassVar[int | None] = LOCAL_NAMESPACE_LIMIT
    context_depth_limit: ClassVar[int] = 30
    block_nesting_limit: ClassVar[int] = 30


_TRUSTED_MARKDOWN = MarkdownIt("js-default", {"html": True, "breaks": True})
_UNTRUSTED_MARKDOWN = MarkdownIt("js-default", {"html": False, "breaks": True})


@with_environment
def markdown(value: object, *, environment: Environment) -> str:
    """Render Markdown with markdown-it (HTML allowed, newlines as <br>), as Dittofeed does.

    With autoescape on, a plain string came from data (a trait), not from the template, so its raw HTML
    is escaped rather than passed through; template text (captured or literal) keeps its HTML.
    """
    text = str(value)
    if not environment.autoescape:
        return str(_TRUSTED_MARKDOWN.render(text))
    renderer = _TRUSTED_MARKDOWN if isinstance(value, Markup) else _UNTRUSTED_MARKDOWN
    return Markup(str(renderer.render(text)))


# Filters that never iterate a value (a range is read as its "start..end" text) and return a number or
# a string no longer than their input or arguments: bounding them guards nothing, and they are the
# filters most templates call most (a message's arithmetic, casing and defaults).
_SCALAR_FILTERS = frozenset(
    {"abs", "at_least", "at_most", "capitalize", "ceil", "default", "divided_by", "downcase", "floor"}
    | {"minus", "modulo", "plus", "round", "size", "times", "upcase"}
)


def _check_ranges(*args: object) -> None:
    for arg in args:
        if isinstance(arg, range) and len(arg) > LOOP_ITERATION_LIMIT:
            raise LiquidError(
                f"range of {len(arg)} items is over the limit of {LOOP_ITERATION_LIMIT}", token=None
            )


def _check_output(result: object) -> None:
    if isinstance(result, str) and len(result) > OUTPUT_LIMIT:
        raise OutputStreamLimitError("output stream limit reached", token=None)


def _bounded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so a huge range cannot be materialised and no filter result outgrows the output."""

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # Filters run several times per message: the common case (no range) costs one scan of the args.
        if range in map(type, args) or (kwargs and range in map(type, kwargs.values())):
            _check_ranges(*args, *kwargs.values())
        result = func(*args, **kwargs)
        if type(result) is not str or len(result) > OUTPUT_LIMIT:
            _check_output(result)
        return result

    # Class-based filters keep these flags on the class, where functools.wraps does not look.
    for flag in ("with_context", "with_environment"):
        if getattr(func, flag, False):
            setattr(bounded, flag, True)
    return bounded


def _make_environment(*, autoescape: bool) -> Environment:
    env = _LimitedEnvironment(
        undefined=LenientUndefined,
        autoescape=autoescape,
        loader=_LayoutLoader(),
    )
    register_tags(env)
    env.add_filter("markdown", markdown)
    env.add_filter("json", JSON())
    for name, func in list(env.filters.items()):
        if name not in _SCALAR_FILTERS:
            env.filters[name] = _bounded(func)
    return env


HTML_ENV = _make_environment(autoescape=True)
TEXT_ENV = _make_environment(autoescape=False)

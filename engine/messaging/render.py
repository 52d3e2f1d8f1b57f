"""Message rendering (Dittofeed §7.6): one Liquid template for one recipient, then MJML for email
bodies.

It knows nothing of storage or providers: the caller hands over a RenderContext. Every template mistake
(syntax, an undefined variable, a resource limit, bad MJML) is a RenderError, a 400, never a crash.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mjml
from liquid import BoundTemplate
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    TemplateNotFoundError,
)

from engine.errors import InvalidInput
from engine.messaging.links import (
    subscription_hash,
    subscription_management_url,
    unsubscribe_url,
    view_in_browser_hash,
    view_in_browser_url,
)
from engine.messaging.liquid_compiler import CompiledTemplate, compile_template
from engine.messaging.liquid_env import (
    HTML_ENV,
    LAYOUTS,
    LOCAL_NAMESPACE_LIMIT,
    LOOP_ITERATION_LIMIT,
    OUTPUT_LIMIT,
    TEXT_ENV,
)
from engine.messaging.liquid_tags import CURRENT_CONTEXT

__all__ = [
    "RenderContext",
    "RenderError",
    "compile_mjml",
    "render_email_body",
    "render_liquid",
    "subscription_hash",
    "subscription_management_url",
    "unsubscribe_url",
    "view_in_browser_hash",
    "view_in_browser_url",
]

# Leading whitespace, comments and an XML declaration may precede the <mjml> root.
_MJML_ROOT = re.compile(r"\A(?:\s+|<!--.*?-->|<\?xml[^>]*\?>)*<mjml[\s>/]", re.DOTALL | re.IGNORECASE)
# One attribute of a start tag: name, then optionally = and a double-, single- or unquoted value.
_ATTRIBUTE = re.compile(r"""(\s+[^\s=<>/"']+)(?:(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_START_TAG = re.compile(rf"(<[A-Za-z][\w:-]*)((?:{_ATTRIBUTE.pattern})*)(\s*/?>)")


@dataclass(frozen=True)
class RenderContext:
    """Everything a template may see about one message: the scope variables of §7.6 and the link base."""

    workspace_id: str
    user: Mapping[str, Any]  # user-property name -> parsed JSON value; always has "id"
    subscription_group_id: str | None = None
    identifier_key: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    is_preview: bool = False
    message_id: str | None = None
    base_url: str = ""  # public base the link tags build on, e.g. "https://feedgate.example.com"


class RenderError(InvalidInput):
    """A template (Liquid or MJML) that cannot be rendered; the message says where and why."""


@functools.lru_cache(maxsize=1024)
def _parse(source: str, html: bool) -> BoundTemplate:
    # Parsed templates are immutable and render with a fresh context each time, so they are shared.
    return (HTML_ENV if html else TEXT_ENV).from_string(source)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> CompiledTemplate | None:
    return compile_template(_parse(source, html))


def _variables(context: RenderContext) -> dict[str, object]:
    return {
        "user": context.user,
        "workspace_id": context.workspace_id,
        "subscription_group_id": context.subscription_group_id,
        "identifier_key": context.identifier_key,
        "secrets": context.secrets,
        "tags": context.tags,
        "is_preview": context.is_preview,
        "message_id": context.message_id,
    }


def _describe(err: LiquidError) -> str:
    if isinstance(err, LoopIterationLimitError):
        message = f"loop iteration limit of {LOOP_ITERATION_LIMIT} reached"
    elif isinstance(err, OutputStreamLimitError):
        message = f"output limit of {OUTPUT_LIMIT} characters reached"
    elif isinstance(err, LocalNamespaceLimitError):
        message = f"assigned data is over the limit of {LOCAL_NAMESPACE_LIMIT} bytes"
    elif isinstance(err, ContextDepthError):
        message = "templates nest too deeply"
    elif isinstance(err, TemplateNotFoundError):
        message = f"template {err.message!s} not found; only the layouts {', '.join(sorted(LAYOUTS))} exist"
    else:
        message = str(err.message)
    where = err.context()
    if where is None:
        return message
    layout = f" of layout {err.template_name}" if err.template_name in LAYOUTS else ""
    return f"line {where[0]}{layout}: {message}"


def render_liquid(source: str, context: RenderContext, *, html: bool = False) -> str:
    """Render one Liquid template; with `html`, values the template outputs are HTML-escaped.

    :raises RenderError: on a syntax error, an undefined variable, or a resource limit.
    """
    if "{" not in source:
        return source  # no tag and no output: nothing to render (most from and reply-to fields)
    reset = CURRENT_CONTEXT.set(context)
    try:
        variables = _variables(context)
        compiled = _compiled(source, html)
        if compiled is not None:
            try:
                return compiled(variables)
            except Exception:  # noqa: S110 (the interpreter renders it again and says what is wrong)
                pass
        return _parse(source, html).render(**variables)
    except LiquidError as err:
        raise RenderError(_describe(err)) from err
    except RecursionError as err:
        raise RenderError("template nests too deeply") from err
    except (TypeError, ValueError, ArithmeticError) as err:
        # A filter handed a value it cannot take; python-liquid lets a few of these through.
        raise RenderError(f"{type(err).__name__}: {err}") from err
    finally:
        CURRENT_CONTEXT.reset(reset)


def _no_includes(path: str) -> str:
    raise ValueError(f"mj-include is not supported ({path})")


def _quote_attribute(match: re.Match[str]) -> str:
    name, equals, value = match.groups()
    if value is None or value[0] in "\"'":
        return match.group(0)
    return f'{name}{equals}"{value}"'


def _quote_start_tag(match: re.Match[str]) -> str:
    opening, attributes, closing = match.group(1), match.group(2), match.group(len(match.groups()))
    return opening + _ATTRIBUTE.sub(_quote_attribute, attributes) + closing


def quote_unquoted_attributes(markup: str) -> str:
    """Quote unquoted attribute values (`clicktracking=off`), which MJML.js takes and MRML refuses."""
    return _START_TAG.sub(_quote_start_tag, markup)


def compile_mjml(source: str) -> str:
    """Compile MJML to HTML; text whose root is not <mjml> is returned unchanged, as upstream does.

    :raises RenderError: on invalid MJML.
    """
    if not _MJML_ROOT.match(source):
        return source
    try:
        return mjml.mjml2html(quote_unquoted_attributes(source), include_loader=_no_includes)
    except ValueError as err:
        raise RenderError(f"MJML: {err}") from err


def render_email_body(source: str, context: RenderContext) -> str:
    """Render an email body: Liquid with autoescape, then MJML when the result is MJML."""
    return compile_mjml(render_liquid(source, context, html=True))

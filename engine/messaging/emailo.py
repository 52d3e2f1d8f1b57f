"""LowCode email bodies (Dittofeed §7.4): the TipTap/ProseMirror document of Dittofeed's "emailo" editor
converted to MJML, node by node as upstream's `toMjml` (packages/emailo/src/toMjml.ts, render mode).

Differences from upstream, all on the safe side: text is HTML-escaped (upstream pastes it raw), link
hrefs must be http(s), mailto or a Liquid expression (anything else, e.g. `javascript:`, loses its link
and keeps its text), image sources http(s) or Liquid, style values are checked before they reach a
`style` attribute, and images are self-closing so MRML accepts them. Liquid (`{{ … }}`, `{% … %}`) in
text and attributes is left untouched, so it renders later with the rest of the body. `markupBlock`
and `markupInline` stay raw markup, as upstream: they are the editor's way to write MJML/Liquid by hand,
the same power a Code template has.
"""

from __future__ import annotations

import html
import re
from typing import Any

from engine.messaging.render import RenderError

MAX_DEPTH = 100
_LIQUID = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_SAFE_HREF = re.compile(r"(?:https?://|mailto:|\{\{|\{%)", re.IGNORECASE)
_SAFE_SRC = re.compile(r"(?:https?://|\{\{|\{%)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CSS_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30}|(?:rgb|hsl)a?\([0-9\s.,%a-z]{1,60}\)")
_CSS_SIZE = re.compile(r"\d{1,4}(?:\.\d{1,4})?(?:px|pt|em|rem|%)")
_CSS_FONT_FAMILY = re.compile(r"[\w\s,'\"-]{1,200}")
_TEXT_ALIGNS = frozenset({"left", "center", "right", "justify"})
_TARGETS = frozenset({"_blank", "_self", "_parent", "_top"})
# Heading level -> (font-size, line-height), upstream's values.
_HEADING_SIZES = {1: ("30px", "36px"), 2: ("24px", "32px"), 3: ("20px", "28px")}
_HEADING_SIZES |= {4: ("18px", "28px"), 5: ("16px", "24px"), 6: ("14px", "20px")}
_CODE_STYLE = "background-color: #171717; border-radius: 2px; color: white;"

_HEAD = (
    "<mjml><mj-head><mj-attributes>"
    '<mj-all font-family="Arial, Helvetica, sans-serif" font-size="12pt" line-height="inherit" '
    'color="inherit" padding="0"/>'
    '<mj-text line-height="1.5" />'
    "</mj-attributes></mj-head>"
    '<mj-body width="2400px"><mj-section full-width="full-width"><mj-column width="100%"><mj-text>'
)
_TAIL = "</mj-text></mj-column></mj-section></mj-body></mjml>"


def emailo_to_mjml(document: Any) -> str:
    """Convert a LowCode document (`{"type": "doc", "content": [...]}`) to an MJML body.

    :raises RenderError: (an InvalidInput on field "body") when the document is malformed.
    """
    if not isinstance(document, dict) or document.get("type") != "doc":
        raise RenderError('body must be a low-code document: {"type": "doc", "content": [...]}', field="body")
    return _HEAD + _Converter().node(document, "body", 0, 0, True) + _TAIL


def _fail(where: str, message: str) -> RenderError:
    return RenderError(f"{where} {message}", field="body")


def escape_text(text: str) -> str:
    """HTML-escape text outside Liquid expressions; the expressions stay as written."""
    return _split_liquid(text, lambda plain: html.escape(plain, quote=False), lambda liquid: liquid)


def escape_attribute(value: str, where: str) -> str:
    """A double-quoted attribute value: text escaped, Liquid kept (its double quotes made single)."""

    def liquid(expression: str) -> str:
        if '"' not in expression:
            return expression
        if "'" in expression:
            raise _fail(where, "has a Liquid expression with both quote kinds, which no attribute can hold")
        return expression.replace('"', "'")

    return _split_liquid(value, lambda plain: html.escape(plain, quote=True), liquid)


def _split_liquid(text: str, plain: Any, liquid: Any) -> str:
    parts: list[str] = []
    position = 0
    for match in _LIQUID.finditer(text):
        parts.append(plain(text[position : match.start()]))
        parts.append(liquid(match.group(0)))
        position = match.end()
    parts.append(plain(text[position:]))
    return "".join(parts)


def safe_href(href: Any) -> str | None:
    """`href` if it is http(s), mailto or Liquid; None otherwise (javascript:, data:, relative, ...)."""
    if not isinstance(href, str):
        return None
    href = href.strip()
    return href if _SAFE_HREF.match(href) else None


def _liquid_literal(value: str) -> str:
    # Liquid prints a template's own string literals without escaping, so the text is escaped here,
    # quotes and braces included: the literal can then neither end early nor open a tag.
    escaped = html.escape(value, quote=True).replace("{", "&#123;").replace("}", "&#125;")
    return "'" + escaped.replace("%", "&#37;") + "'"


def user_property_expression(variable_name: Any, default_value: Any, where: str) -> str:
    """`{{ user.name | default: '…' }}` for a userProperty node, as upstream's userPropertyToExpression."""
    if not isinstance(variable_name, str) or not variable_name:
        raise _fail(f"{where}/attrs/variableName", "must be a non-empty string")
    if _IDENTIFIER.fullmatch(variable_name):
        base = f"user.{variable_name}"
    elif any(char in variable_name for char in "{}%\n\r") or ('"' in variable_name and "'" in variable_name):
        raise _fail(f"{where}/attrs/variableName", "cannot be used as a user property name")
    else:
        quote = '"' if "'" in variable_name else "'"
        base = f"user[{quote}{variable_name}{quote}]"
    if default_value is None or default_value == "":
        return "{{ " + base + " }}"
    if not isinstance(default_value, str):
        raise _fail(f"{where}/attrs/defaultValue", "must be a string")
    return "{{ " + base + " | default: " + _liquid_literal(default_value) + " }}"


def _style(declarations: list[str]) -> str:
    return html.escape(" ".join(declarations), quote=True)


def _attrs(node: dict[str, Any], where: str) -> dict[str, Any]:
    attrs = node.get("attrs")
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise _fail(f"{where}/attrs", "must be object")
    return attrs


def _checked(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


class _Converter:
    """One conversion; each method returns the markup of one node (and its children)."""

    def node(self, node: Any, where: str, depth: int, index: int, last: bool) -> str:
        if not isinstance(node, dict):
            raise _fail(where, "must be object")
        if depth > MAX_DEPTH:
            raise _fail(where, f"nests deeper than {MAX_DEPTH} levels")
        kind = node.get("type")
        attrs = _attrs(node, where)
        children = self.children(node, where, depth)
        if kind == "doc":
            return children
        if kind == "text":
            return self.text(node, where)
        if kind == "heading":
            return self.paragraph(attrs, children, index, last, heading=True)
        if kind == "paragraph":
            return self.paragraph(attrs, children, index, last)
        if kind == "bulletList":
            style = "list-style-type: disc; padding-left: 32px; padding-right: 32px; margin-top: 32px; "
            return f'<ul style="{style}margin-bottom: 32px;">{children}</ul>'
        if kind == "orderedList":
            start = attrs.get("start")
            start = start if isinstance(start, int) and not isinstance(start, bool) and start >= 0 else 1
            style = "list-style-type: decimal; padding-left: 32px; padding-right: 32px; margin-top: 32px; "
            return f'<ol style="{style}margin-bottom: 32px;" start="{start}">{children}</ol>'
        if kind == "listItem":
            return f'<li style="margin-top: 4px; margin-bottom: 4px;">{children}</li>'
        if kind == "codeBlock":
            style = "background-color: #404040; color: white; padding: 16px; border-radius: 4px; "
            code = escape_text(self.plain_text(node, where))
            return f'<pre style="{style}margin-top: 48px; margin-bottom: 48px;"><code>{code}</code></pre>'
        if kind == "blockquote":
            return f"<blockquote>{children}</blockquote>"
        if kind == "blockquoteFigure":
            return self.blockquote_figure(node, where, depth)
        if kind == "hardBreak":
            return "<br />"
        if kind == "horizontalRule":
            return '<hr style="border: 0; border-top: 1px solid #e5e7eb; margin-top: 12px;" />'
        if kind == "userProperty":
            return user_property_expression(attrs.get("variableName"), attrs.get("defaultValue"), where)
        if kind == "unsubscribeLink":
            return self.unsubscribe_link(node, attrs, where)
        if kind in ("markupBlock", "markupInline"):
            return self.plain_text(node, where)
        if kind in ("dfImage", "image"):
            return self.image(attrs, where)
        # Upstream drops node types it does not know (with a console error); so does this.
        return ""

    def children(self, node: dict[str, Any], where: str, depth: int) -> str:
        content = node.get("content")
        if content is None:
            return ""
        if not isinstance(content, list):
            raise _fail(f"{where}/content", "must be array")
        last = len(content) - 1
        return "".join(
            self.node(child, f"{where}/content/{i}", depth + 1, i, i == last)
            for i, child in enumerate(content)
        )

    def plain_text(self, node: dict[str, Any], where: str) -> str:
        """The text of a node's text children, unconverted (markup blocks, code blocks)."""
        content = node.get("content") or []
        if not isinstance(content, list):
            raise _fail(f"{where}/content", "must be array")
        texts = [child.get("text") for child in content if isinstance(child, dict)]
        return "".join(text for text in texts if isinstance(text, str))

    def text(self, node: dict[str, Any], where: str, marks: Any = None) -> str:
        text = node.get("text", "")
        if not isinstance(text, str):
            raise _fail(f"{where}/text", "must be string")
        marks = node.get("marks") if marks is None else marks
        if marks is None:
            marks = []
        if not isinstance(marks, list):
            raise _fail(f"{where}/marks", "must be array")
        for i, mark in enumerate(marks):
            if not isinstance(mark, dict) or not isinstance(mark.get("type"), str):
                raise _fail(f"{where}/marks/{i}", "must be an object with a string type")
            if mark["type"] == "markupInline":
                return text  # raw markup, as upstream
        styled, styles = escape_text(text), list[str]()
        for i, mark in enumerate(marks):
            styled = self.apply_mark(mark, styled, styles, f"{where}/marks/{i}")
        return f'<span style="{_style(styles)}">{styled}</span>' if styles else styled

    def apply_mark(self, mark: dict[str, Any], inner: str, styles: list[str], where: str) -> str:
        kind = mark["type"]
        attrs = _attrs(mark, where)
        simple = {"bold": "strong", "italic": "em", "underline": "u", "strike": "s"}
        simple |= {"superscript": "sup", "subscript": "sub"}
        if kind in simple:
            return f"<{simple[kind]}>{inner}</{simple[kind]}>"
        if kind == "code":
            return f'<code style="{_CODE_STYLE}">{inner}</code>'
        if kind == "highlight":
            styles.append("background-color: yellow;")
        elif kind == "textStyle":
            for css, attr, pattern in (
                ("font-family", "fontFamily", _CSS_FONT_FAMILY),
                ("font-size", "fontSize", _CSS_SIZE),
                ("color", "color", _CSS_COLOR),
            ):
                value = _checked(attrs.get(attr), pattern)
                if value:
                    styles.append(f"{css}: {value};")
        elif kind == "link":
            href = safe_href(attrs.get("href"))
            if href is None:
                return inner
            target = attrs.get("target") if attrs.get("target") in _TARGETS else "_blank"
            return (
                f'<a href="{escape_attribute(href, f"{where}/attrs/href")}" target="{target}" '
                'rel="noopener noreferrer nofollow" style="color: inherit; text-decoration: underline;">'
                f"{inner}</a>"
            )
        return inner

    def paragraph(
        self, attrs: dict[str, Any], children: str, index: int, last: bool, *, heading: bool = False
    ) -> str:
        styles = ["margin: 0;" if index == 0 or last else "margin-top: 24px; margin-bottom: 24px;"]
        if attrs.get("textAlign") in _TEXT_ALIGNS:
            styles.append(f"text-align: {attrs['textAlign']};")
        if heading:
            level = attrs.get("level", 1)
            font_size, line_height = _HEADING_SIZES.get(level, ("16px", "24px"))
            styles += [f"font-size: {font_size};", f"line-height: {line_height};", "font-weight: bold;"]
        return f'<p style="{_style(styles)}">{children or "<br />"}</p>'

    def blockquote_figure(self, node: dict[str, Any], where: str, depth: int) -> str:
        parts = {"quote": "", "quoteCaption": ""}
        for i, child in enumerate(node.get("content") or []):
            if isinstance(child, dict) and child.get("type") in parts:
                parts[child["type"]] = self.children(child, f"{where}/content/{i}", depth + 1)
        return (
            '<div style="border-left: 4px solid black; padding-left: 16px; padding-top: 8px; '
            'padding-bottom: 8px; margin-top: 56px; margin-bottom: 56px;">'
            '<blockquote style="margin: 0; padding: 0; font-size: 18px; line-height: 1.5; color: #111827; '
            f'font-size: inherit;">{parts["quote"]}</blockquote>'
            '<p style="margin-top: 16px; margin-bottom: 0; font-size: 14px; line-height: 1.25; '
            f'color: #6b7280;">{parts["quoteCaption"]}</p></div>'
        )

    def unsubscribe_link(self, node: dict[str, Any], attrs: dict[str, Any], where: str) -> str:
        link_text = attrs.get("linkText")
        text = link_text if isinstance(link_text, str) and link_text else "unsubscribe"
        marks = node.get("marks") or []
        if not isinstance(marks, list):
            raise _fail(f"{where}/marks", "must be array")
        link = {"type": "link", "attrs": {"href": "{% unsubscribe_url %}", "target": "_blank"}}
        return self.text({"type": "text", "text": text}, where, [*marks, link])

    def image(self, attrs: dict[str, Any], where: str) -> str:
        src = attrs.get("url", attrs.get("src"))
        if not isinstance(src, str) or not _SAFE_SRC.match(src.strip()):
            return ""
        alt = attrs.get("alt")
        alt = alt if isinstance(alt, str) else ""
        src = escape_attribute(src.strip(), f"{where}/attrs/src")
        markup = f'<img src="{src}" alt="{escape_attribute(alt, f"{where}/attrs/alt")}"'
        width = attrs.get("width")
        if isinstance(width, str) and width.isdigit():
            width = int(width)
        if isinstance(width, int | float) and not isinstance(width, bool) and 0 < width < 10_000:
            markup += f' width="{int(width)}" style="max-width: 100%; height: auto;"'
        return markup + " />"

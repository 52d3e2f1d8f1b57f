"""LowCode email documents (Dittofeed's emailo editor) become MJML node by node; text is escaped,
hostile links and images are dropped, Liquid survives to be rendered, and the output compiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from engine.errors import InvalidInput
from engine.messaging.emailo import emailo_to_mjml
from engine.messaging.render import RenderContext, compile_mjml, render_email_body

VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "source"}
CONTEXT = RenderContext(
    workspace_id="ws-1",
    user={"id": "u-1", "email": "ann@example.com", "firstName": "Ann", "full name": "Ann Lee"},
    identifier_key="email",
    secrets={"subscription-key": "sub-secret"},
    base_url="https://feedgate.example.com",
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def find_all(self, tag: str) -> list[Element]:
        found: list[Element] = []
        for child in self.children:
            if isinstance(child, Element):
                found += [child] if child.tag == tag else []
                found += child.find_all(tag)
        return found

    def find(self, tag: str) -> Element:
        (only,) = self.find_all(tag)
        return only


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


def doc(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "content": list(blocks)}


def paragraph(*inline: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "paragraph", "content": list(inline)}
    return node | ({"attrs": attrs} if attrs else {})


def text(value: str, *marks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": value} | ({"marks": list(marks)} if marks else {})


def mark(kind: str, **attrs: Any) -> dict[str, Any]:
    return {"type": kind} | ({"attrs": attrs} if attrs else {})


def body_of(document: dict[str, Any]) -> Element:
    """The content of the one mj-text, compiled to HTML and parsed (without rendering Liquid)."""
    html = compile_mjml(emailo_to_mjml(document))
    return _content(html)


def rendered(document: dict[str, Any], context: RenderContext = CONTEXT) -> Element:
    """The email as sent: MJML, then Liquid with the recipient's values, then HTML."""
    return _content(render_email_body(emailo_to_mjml(document), context))


def _content(html: str) -> Element:
    root = parse(html)
    # mj-text puts its content in the innermost div of the column.
    divs = [d for d in root.find_all("div") if not d.find_all("div") and d.find_all("td") == []]
    return divs[-1]


# Nodes


def test_the_document_is_wrapped_in_one_mjml_column_that_compiles() -> None:
    mjml = emailo_to_mjml(doc(paragraph(text("Hello"))))
    assert mjml.startswith("<mjml>") and mjml.endswith("</mjml>")
    html = compile_mjml(mjml)
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert body_of(doc(paragraph(text("Hello")))).find("p").text == "Hello"


def test_paragraphs_keep_their_alignment_and_an_empty_one_keeps_its_line() -> None:
    body = body_of(doc(paragraph(text("a"), textAlign="center"), paragraph(), paragraph(text("c"))))
    first, empty, last = body.find_all("p")
    assert "text-align: center" in (first.attrs["style"] or "")
    assert empty.find_all("br") != [] and empty.text == ""
    assert last.text == "c"


@pytest.mark.parametrize(("level", "size"), [(1, "30px"), (2, "24px"), (3, "20px"), (6, "14px"), (9, "16px")])
def test_headings_are_bold_paragraphs_sized_by_level(level: int, size: str) -> None:
    node = {"type": "heading", "attrs": {"level": level}, "content": [text("Title")]}
    heading = body_of(doc(node)).find("p")
    style = heading.attrs["style"] or ""
    assert heading.text == "Title" and f"font-size: {size}" in style and "font-weight: bold" in style


@pytest.mark.parametrize(
    ("kind", "tag"),
    [
        ("bold", "strong"),
        ("italic", "em"),
        ("underline", "u"),
        ("strike", "s"),
        ("code", "code"),
        ("superscript", "sup"),
        ("subscript", "sub"),
    ],
)
def test_marks_become_inline_elements(kind: str, tag: str) -> None:
    element = body_of(doc(paragraph(text("word", mark(kind))))).find(tag)
    assert element.text == "word"


def test_marks_nest_in_document_order() -> None:
    body = body_of(doc(paragraph(text("x", mark("bold"), mark("link", href="https://a.test/")))))
    link = body.find("a")
    assert link.find("strong").text == "x"


def test_text_style_and_highlight_become_a_styled_span() -> None:
    style = mark("textStyle", color="#f50404", fontSize="18px", fontFamily="Courier, monospace")
    span = body_of(doc(paragraph(text("ways", style, mark("highlight"))))).find("span")
    css = span.attrs["style"] or ""
    assert span.text == "ways"
    for declaration in ("color: #f50404", "font-size: 18px", "font-family: Courier, monospace"):
        assert declaration in css
    assert "background-color: yellow" in css


@pytest.mark.parametrize(
    "value",
    [
        "red; background: url(javascript:alert(1))",
        "expression(alert(1))",
        '"><script>x</script>',
        "12px !important",
    ],
)
def test_hostile_style_values_are_left_out(value: str) -> None:
    style = mark("textStyle", color=value, fontSize=value, fontFamily=value)
    body = body_of(doc(paragraph(text("t", style))))
    assert body.find_all("span") == [] and body.find_all("script") == []
    assert body.find("p").text == "t"


def test_lists_blockquotes_code_rules_and_breaks() -> None:
    item = {"type": "listItem", "content": [paragraph(text("one"))]}
    body = body_of(
        doc(
            {"type": "bulletList", "content": [item]},
            {"type": "orderedList", "attrs": {"start": 3}, "content": [item, item]},
            {"type": "blockquote", "content": [paragraph(text("quoted"))]},
            {"type": "codeBlock", "content": [text("if a < b && c:\n  go()")]},
            {"type": "horizontalRule"},
            paragraph(text("line 1"), {"type": "hardBreak"}, text("line 2")),
        )
    )
    assert [li.text for li in body.find("ul").find_all("li")] == ["one"]
    ordered = body.find("ol")
    assert ordered.attrs["start"] == "3" and len(ordered.find_all("li")) == 2
    assert body.find("blockquote").text == "quoted"
    assert body.find("pre").find("code").text == "if a < b && c:\n  go()"
    assert len(body.find_all("hr")) == 1
    assert body.find_all("p")[-1].find_all("br") != []


def test_blockquote_figures_have_a_quote_and_a_caption() -> None:
    figure = {
        "type": "blockquoteFigure",
        "content": [
            {"type": "quote", "content": [paragraph(text("Be brief."))]},
            {"type": "quoteCaption", "content": [text("Someone")]},
        ],
    }
    body = body_of(doc(figure))
    assert body.find("blockquote").text == "Be brief."
    assert body.find_all("p")[-1].text == "Someone"


@pytest.mark.parametrize(
    "node",
    [
        {"type": "dfImage", "attrs": {"url": "https://cdn.test/a.png", "alt": "Logo", "width": 120}},
        {"type": "image", "attrs": {"src": "https://cdn.test/a.png", "alt": "Logo", "width": "120"}},
    ],
)
def test_images_keep_source_alt_and_width(node: dict[str, Any]) -> None:
    image = body_of(doc(paragraph(node))).find("img")
    assert (image.attrs["src"], image.attrs["alt"], image.attrs["width"]) == (
        "https://cdn.test/a.png",
        "Logo",
        "120",
    )


@pytest.mark.parametrize("src", ["javascript:alert(1)", "data:text/html,<script>", "/relative.png", ""])
def test_images_from_unsafe_sources_are_dropped(src: str) -> None:
    body = body_of(doc(paragraph(text("before"), {"type": "dfImage", "attrs": {"url": src, "alt": "x"}})))
    assert body.find_all("img") == [] and body.find("p").text == "before"


def test_markup_blocks_are_raw_markup_as_upstream() -> None:
    block = {"type": "markupBlock", "content": [text("<p class='raw'>{{ user.firstName }}</p>")]}
    assert rendered(doc(block)).find("p").text == "Ann"


def test_unknown_node_types_are_dropped_as_upstream_does() -> None:
    body = body_of(doc(paragraph(text("kept")), {"type": "table", "content": [text("gone")]}))
    assert body.text == "kept"


# Escaping and links


def test_text_is_escaped_so_markup_in_it_stays_text() -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)> & co"
    body = body_of(doc(paragraph(text(hostile))))
    assert body.find_all("script") == [] and body.find_all("img") == []
    assert body.find("p").text == hostile


@pytest.mark.parametrize(
    "href",
    [
        "https://example.com/a?b=1&c=2",
        "http://example.com/",
        "mailto:help@example.com",
        "{{ user.profileUrl }}",
        "{% unsubscribe_url %}",
    ],
)
def test_safe_links_are_kept(href: str) -> None:
    link = body_of(doc(paragraph(text("go", mark("link", href=href))))).find("a")
    assert link.attrs["href"] == href and link.text == "go"
    assert link.attrs["rel"] == "noopener noreferrer nofollow"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "  javascript:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox",
        "data:text/html;base64,PHNjcmlwdD4=",
        "/relative",
        "//evil.example/",
        "ftp://files.example/",
        None,
        42,
    ],
)
def test_hostile_links_lose_the_link_and_keep_the_text(href: Any) -> None:
    body = body_of(doc(paragraph(text("click", mark("link", href=href)))))
    assert body.find_all("a") == [] and body.find("p").text == "click"


def test_a_quote_in_an_href_cannot_add_attributes() -> None:
    href = 'https://example.com/" onmouseover="alert(1)'
    link = body_of(doc(paragraph(text("x", mark("link", href=href))))).find("a")
    assert link.attrs["href"] == href and "onmouseover" not in link.attrs


# Liquid


def test_liquid_in_text_survives_the_conversion_untouched() -> None:
    expression = "{{ user.firstName | default: 'there' }}"
    mjml = emailo_to_mjml(doc(paragraph(text(f"Hi {expression} & <friends>"))))
    assert expression in mjml
    assert (
        rendered(doc(paragraph(text(f"Hi {expression} & <friends>")))).find("p").text == "Hi Ann & <friends>"
    )


def test_liquid_with_comparisons_renders_after_conversion() -> None:
    block = paragraph(text("{% if user.firstName.size < 5 %}short{% else %}long{% endif %} name"))
    assert rendered(doc(block)).find("p").text == "short name"


def test_user_values_are_escaped_when_rendered() -> None:
    context = RenderContext(workspace_id="ws-1", user={"id": "u", "firstName": "<script>x</script>"})
    body = rendered(doc(paragraph(text("Hi {{ user.firstName }}"))), context)
    assert body.find_all("script") == [] and body.find("p").text == "Hi <script>x</script>"


def test_liquid_with_double_quotes_works_inside_an_href() -> None:
    href = '{{ user.profileUrl | default: "https://example.com/me" }}'
    link = rendered(doc(paragraph(text("me", mark("link", href=href))))).find("a")
    assert link.attrs["href"] == "https://example.com/me"


def test_liquid_with_both_quote_kinds_cannot_sit_in_an_href() -> None:
    href = """{{ user.url | default: "it's" }}"""
    with pytest.raises(InvalidInput) as raised:
        emailo_to_mjml(doc(paragraph(text("x", mark("link", href=href)))))
    assert raised.value.field == "body" and "content/0/content/0/marks/0/attrs/href" in raised.value.message


def test_user_property_nodes_become_liquid_with_their_default() -> None:
    def prop(name: str, default: str = "") -> dict[str, Any]:
        return {"type": "userProperty", "attrs": {"variableName": name, "defaultValue": default}}

    document = doc(
        paragraph(prop("firstName")),
        paragraph(prop("full name")),
        paragraph(prop("nickname", "friend & <pal> 'o' \"q\" {{ x }}")),
    )
    assert "{{ user.firstName }}" in emailo_to_mjml(document)
    assert [p.text for p in rendered(document).find_all("p")] == [
        "Ann",
        "Ann Lee",
        "friend & <pal> 'o' \"q\" {{ x }}",
    ]


@pytest.mark.parametrize("name", ["x }}{{ secrets", "a{% raw %}", "both'\"quotes", "", None])
def test_user_property_names_that_could_break_out_are_refused(name: Any) -> None:
    node = {"type": "userProperty", "attrs": {"variableName": name, "defaultValue": ""}}
    with pytest.raises(InvalidInput) as raised:
        emailo_to_mjml(doc(paragraph(node)))
    assert raised.value.field == "body"


def test_unsubscribe_links_point_at_the_unsubscribe_url_and_keep_their_marks() -> None:
    node = {
        "type": "unsubscribeLink",
        "attrs": {"linkText": "unsubscribe"},
        "marks": [mark("textStyle", color="#999999")],
    }
    styled = rendered(doc(paragraph(text("Don't like these? "), node))).find("span")
    link = styled.find("a")
    assert link.text == "unsubscribe"
    assert (link.attrs["href"] or "").startswith(
        "https://feedgate.example.com/api/public/subscription-management/page?"
    )
    assert "color: #999999" in (styled.attrs["style"] or "")


def test_upstreams_default_document_converts_and_renders() -> None:
    document = doc(
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Hi there,")]},
        paragraph(
            text("this is a "),
            text("basic", mark("italic")),
            text(" example"),
            textAlign="left",
            **{"class": None},
        ),
        paragraph(
            text("Or with inline markup, "),
            text('{{ user.email | default: "example@email.com" }}', mark("markupInline")),
        ),
        paragraph(
            {"type": "unsubscribeLink", "attrs": {"linkText": "unsubscribe"}},
            textAlign="center",
        ),
        paragraph(),
    )
    body = rendered(document)
    texts = [p.text for p in body.find_all("p")]
    assert texts[:3] == ["Hi there,", "this is a basic example", "Or with inline markup, ann@example.com"]
    assert body.find("a").text == "unsubscribe"


# Malformed documents


@pytest.mark.parametrize(
    "document",
    [
        None,
        "just text",
        {"type": "paragraph"},
        {"content": []},
        {"type": "doc", "content": "not a list"},
        {"type": "doc", "content": ["not a node"]},
        {"type": "doc", "content": [{"type": "paragraph", "attrs": []}]},
        doc(paragraph({"type": "text", "text": 7})),
        doc(paragraph({"type": "text", "text": "x", "marks": "bold"})),
        doc(paragraph({"type": "text", "text": "x", "marks": [{"attrs": {}}]})),
    ],
)
def test_malformed_documents_are_refused_on_the_body_field(document: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        emailo_to_mjml(document)
    assert raised.value.field == "body"


def test_documents_nested_too_deeply_are_refused_not_a_crash() -> None:
    node: dict[str, Any] = text("deep")
    for _ in range(5000):
        node = {"type": "blockquote", "content": [node]}
    with pytest.raises(InvalidInput) as raised:
        emailo_to_mjml(doc(node))
    assert "nests deeper" in raised.value.message

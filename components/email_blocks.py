"""The LowCode email editor's blocks: a flat list of heading, paragraph, button, image and divider
blocks, read from and compiled to the engine's LowCode body (the TipTap document that
engine.messaging.emailo converts to MJML), and posted back and forth as form fields.

A document node the blocks cannot show (a list, a quote, styled text, an unsubscribe link) becomes an
`other` block that keeps the node as it is: it can be moved or removed, never silently changed. A
block read from a node also keeps that node, so attributes the editor does not show (a paragraph's
alignment, an image's width) survive an edit.

A button is a centred paragraph holding one bold link, which is how it compiles; that is also how
one is recognised when read back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from starlette.datastructures import FormData

from components.template_editing import form_text
from engine.errors import InvalidInput

BlockKind = Literal["heading", "paragraph", "button", "image", "divider", "other"]
NewBlockKind = Literal["heading", "paragraph", "button", "image", "divider"]
NEW_BLOCK_KINDS: tuple[NewBlockKind, ...] = get_args(NewBlockKind)
BLOCK_KINDS: tuple[BlockKind, ...] = get_args(BlockKind)
HEADING_LEVELS = (1, 2, 3, 4, 5, 6)
MAX_BLOCKS = 200
_SUMMARY_LENGTH = 120
_BUTTON_MARKS = frozenset({"bold", "link"})


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str = ""
    level: int = 1
    url: str = ""
    alt: str = ""
    # The document node the block was read from, if any: kept for what the editor does not show.
    node: dict[str, Any] | None = None

    @property
    def node_json(self) -> str:
        return "" if self.node is None else json.dumps(self.node, ensure_ascii=False)

    @property
    def summary(self) -> str:
        """A short text of an `other` block, so the editor can say what it keeps."""
        text = " ".join(_texts(self.node)).strip() if self.node is not None else ""
        return text if len(text) <= _SUMMARY_LENGTH else text[: _SUMMARY_LENGTH - 1] + "…"

    @property
    def node_type(self) -> str:
        return str(self.node.get("type")) if self.node is not None else ""


# -- document -> blocks ------------------------------------------------------------------------------


def blocks_from_document(document: Any) -> list[Block]:
    """The blocks of a LowCode body; anything but a `{"type": "doc", "content": [...]}` has none."""
    if not isinstance(document, dict) or not isinstance(document.get("content"), list):
        return []
    return [_block_of(node) for node in document["content"] if isinstance(node, dict)]


def _block_of(node: dict[str, Any]) -> Block:
    kind = node.get("type")
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    assert isinstance(attrs, dict)
    if kind == "horizontalRule":
        return Block("divider", node=node)
    if kind in ("image", "dfImage"):
        url, alt = attrs.get("url", attrs.get("src")), attrs.get("alt")
        return Block(
            "image",
            url=url if isinstance(url, str) else "",
            alt=alt if isinstance(alt, str) else "",
            node=node,
        )
    if kind == "heading":
        text = _plain_text(node)
        level = attrs.get("level")
        if text is not None:
            return Block("heading", text=text, level=level if level in HEADING_LEVELS else 1, node=node)
    if kind == "paragraph":
        button = _button_of(node)
        if button is not None:
            return button
        text = _plain_text(node)
        if text is not None:
            return Block("paragraph", text=text, node=node)
    return Block("other", node=node)


def _plain_text(node: dict[str, Any]) -> str | None:
    """The text of a node made only of unmarked text and line breaks, else None."""
    content = node.get("content", [])
    if not isinstance(content, list):
        return None
    parts = []
    for child in content:
        if not isinstance(child, dict):
            return None
        if child.get("type") == "hardBreak":
            parts.append("\n")
        elif child.get("type") == "text" and isinstance(child.get("text"), str) and not child.get("marks"):
            parts.append(child["text"])
        else:
            return None
    return "".join(parts)


def _button_of(node: dict[str, Any]) -> Block | None:
    content = node.get("content")
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0], dict):
        return None
    text = content[0]
    marks = text.get("marks")
    if text.get("type") != "text" or not isinstance(text.get("text"), str) or not isinstance(marks, list):
        return None
    kinds = {mark.get("type") for mark in marks if isinstance(mark, dict)}
    if len(kinds) != len(marks) or "link" not in kinds or not kinds <= _BUTTON_MARKS:
        return None
    link = next(mark for mark in marks if mark.get("type") == "link")
    href = link.get("attrs", {}).get("href") if isinstance(link.get("attrs"), dict) else None
    return Block("button", text=text["text"], url=href if isinstance(href, str) else "", node=node)


def _texts(node: Any) -> list[str]:
    if not isinstance(node, dict):
        return []
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    assert isinstance(attrs, dict)
    if node.get("type") == "text" and isinstance(node.get("text"), str):
        return [node["text"]]
    if node.get("type") == "unsubscribeLink":
        return [str(attrs.get("linkText") or "unsubscribe")]
    if node.get("type") == "userProperty":
        return ["{{ user." + str(attrs.get("variableName")) + " }}"]
    content = node.get("content")
    return [text for child in content for text in _texts(child)] if isinstance(content, list) else []


# -- blocks -> document ------------------------------------------------------------------------------


def document_from_blocks(blocks: list[Block]) -> dict[str, Any]:
    """The LowCode body the blocks compile to."""
    return {"type": "doc", "content": [_node_of(block) for block in blocks]}


def _node_of(block: Block) -> dict[str, Any]:
    kept = block.node or {}
    attrs = dict(kept.get("attrs") or {}) if isinstance(kept.get("attrs"), dict) else {}
    if block.kind == "other":
        return kept
    if block.kind == "divider":
        return {"type": "horizontalRule"}
    if block.kind == "image":
        kind = kept.get("type") if kept.get("type") in ("image", "dfImage") else "image"
        # The engine reads `url` before `src`; write to the one the node already uses.
        attrs["url" if "url" in attrs else "src"] = block.url.strip()
        attrs["alt"] = block.alt
        return {"type": kind, "attrs": attrs}
    if block.kind == "button":
        attrs["textAlign"] = "center"
        link = {"type": "link", "attrs": {"href": block.url.strip(), "target": "_blank"}}
        label = (
            [{"type": "text", "text": block.text, "marks": [{"type": "bold"}, link]}] if block.text else []
        )
        return {"type": "paragraph", "attrs": attrs, "content": label}
    if block.kind == "heading":
        attrs["level"] = block.level
    node: dict[str, Any] = {"type": block.kind}
    if attrs:
        node["attrs"] = attrs
    content = _text_content(block.text)
    if content:
        node["content"] = content
    return node


def _text_content(text: str) -> list[dict[str, Any]]:
    """Text nodes, with a line break node between lines (empty text nodes are not valid TipTap)."""
    nodes: list[dict[str, Any]] = []
    for i, line in enumerate(text.replace("\r\n", "\n").split("\n")):
        if i:
            nodes.append({"type": "hardBreak"})
        if line:
            nodes.append({"type": "text", "text": line})
    return nodes


# -- form <-> blocks ---------------------------------------------------------------------------------


def field_name(index: int, part: str) -> str:
    return f"block-{index}-{part}"


def blocks_from_form(form: FormData, *, complete: bool = False) -> list[Block]:
    """The blocks an editor form posts: `blocks-count`, then `block-<i>-kind|text|level|url|alt|node`.
    With `complete` (a save), `blocks-count` must be there; else its absence means no blocks.

    :raises InvalidInput: naming the field that is malformed (or missing).
    """
    count_text = form_text(form, "blocks-count", None if complete else "0")
    if not count_text.isdigit() or int(count_text) > MAX_BLOCKS:
        raise InvalidInput(f"blocks-count must be a number from 0 to {MAX_BLOCKS}", field="blocks-count")
    return [_block_from_form(form, i) for i in range(int(count_text))]


def _block_from_form(form: FormData, i: int) -> Block:
    kind = form_text(form, field_name(i, "kind"))
    if kind not in BLOCK_KINDS:
        field = field_name(i, "kind")
        raise InvalidInput(f"{field} must be one of {', '.join(BLOCK_KINDS)}", field=field)
    node = _node_from_form(form, i)
    if kind == "other" and node is None:
        field = field_name(i, "node")
        raise InvalidInput(f"{field} must hold the kept document node", field=field)
    level_text = form_text(form, field_name(i, "level"), "1")
    if kind == "heading" and (not level_text.isdigit() or int(level_text) not in HEADING_LEVELS):
        field = field_name(i, "level")
        raise InvalidInput(f"{field} must be a heading level from 1 to 6", field=field)
    return Block(
        kind,  # checked against BLOCK_KINDS above
        text=form_text(form, field_name(i, "text")),
        level=int(level_text) if level_text.isdigit() else 1,
        url=form_text(form, field_name(i, "url")),
        alt=form_text(form, field_name(i, "alt")),
        node=node,
    )


def _node_from_form(form: FormData, i: int) -> dict[str, Any] | None:
    field = field_name(i, "node")
    raw = form_text(form, field)
    if not raw:
        return None
    try:
        node = json.loads(raw)
    except ValueError:
        raise InvalidInput(f"{field} must be a JSON document node", field=field) from None
    if not isinstance(node, dict):
        raise InvalidInput(f"{field} must be a JSON document node", field=field)
    return node


# -- editing -----------------------------------------------------------------------------------------


def apply_operation(blocks: list[Block], operation: str) -> list[Block]:
    """`add:<kind>` appends a new block; `remove:<i>`, `up:<i>`, `down:<i>` remove or move block i.

    :raises InvalidInput: naming `op`, when the operation or its block does not exist.
    """
    verb, _, argument = operation.partition(":")
    if verb == "add" and argument in NEW_BLOCK_KINDS:
        if len(blocks) >= MAX_BLOCKS:
            raise InvalidInput(f"op cannot add a block: at most {MAX_BLOCKS} blocks", field="op")
        level = 2 if argument == "heading" else 1
        return [*blocks, Block(argument, level=level)]
    if verb in ("remove", "up", "down") and argument.isdigit() and int(argument) < len(blocks):
        i = int(argument)
        edited = list(blocks)
        if verb == "remove":
            del edited[i]
        elif verb == "up" and i > 0:
            edited[i - 1], edited[i] = edited[i], edited[i - 1]
        elif verb == "down" and i + 1 < len(edited):
            edited[i + 1], edited[i] = edited[i], edited[i + 1]
        return edited
    raise InvalidInput(f"op {operation!r} is not a block operation", field="op")

"""Dittofeed's custom Liquid tags (§7.6): unsubscribe / subscription-management links and URLs, the
view-in-browser URL, and `layout` as an alias of `extends`.

The tags read the message's RenderContext from a context variable set for the duration of one render,
never from template variables, so a template cannot forge a link for someone else.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TextIO

from liquid import Environment, Markup, Tag
from liquid.ast import Node
from liquid.extra.tags import BlockTag, ExtendsTag
from liquid.token import TOKEN_EXPRESSION, TOKEN_TAG, Token

from engine.messaging.links import subscription_management_url, unsubscribe_url, view_in_browser_url

if TYPE_CHECKING:
    from liquid import RenderContext as LiquidContext
    from liquid.stream import TokenStream

    from engine.messaging.render import RenderContext

CURRENT_CONTEXT: ContextVar[RenderContext] = ContextVar("feedgate_render_context")


def _safe(html: str, autoescape: bool) -> str:
    # Our own markup must survive autoescape when the result is passed through filters or captured.
    return Markup(html) if autoescape else html


class MarkupNode(Node):
    """A tag whose output is our own text for the message being rendered (a link or a URL)."""

    def markup(self, autoescape: bool) -> str:
        raise NotImplementedError

    def render_to_output(self, context: LiquidContext, buffer: TextIO) -> int:
        return buffer.write(self.markup(context.autoescape))


class _LinkNode(MarkupNode):
    __slots__ = ("css_class", "text", "url")

    def __init__(
        self, token: Token, *, url: Callable[[RenderContext], str], css_class: str, text: str
    ) -> None:
        super().__init__(token)
        self.url = url
        self.css_class = css_class
        self.text = text
        self.blank = False

    def __str__(self) -> str:
        return f"{{% {self.token.value} {self.text} %}}"

    def markup(self, autoescape: bool) -> str:
        href = self.url(CURRENT_CONTEXT.get())
        # clicktracking=off keeps SendGrid from rewriting the link (Dittofeed's markup, verbatim).
        html = f'<a class="{self.css_class}" clicktracking=off href="{href}" target="_blank">{self.text}</a>'
        return _safe(html, autoescape)


class _UrlNode(MarkupNode):
    __slots__ = ("url",)

    def __init__(self, token: Token, *, url: Callable[[RenderContext], str]) -> None:
        super().__init__(token)
        self.url = url
        self.blank = False

    def __str__(self) -> str:
        return f"{{% {self.token.value} %}}"

    def markup(self, autoescape: bool) -> str:
        return _safe(self.url(CURRENT_CONTEXT.get()), autoescape)


def _tag_argument(stream: TokenStream) -> tuple[Token, str]:
    """Consume a tag and its raw argument text; leave the stream on the tag's last token."""
    token = stream.current
    stream.expect(TOKEN_TAG)
    if stream.peek.kind == TOKEN_EXPRESSION:
        next(stream)
        return token, stream.current.value.strip()
    return token, ""


class _LinkTag(Tag):
    block = False
    css_class = ""
    default_text = ""

    @staticmethod
    def url(context: RenderContext) -> str:
        raise NotImplementedError

    def parse(self, stream: TokenStream) -> Node:
        # LiquidJS hands the raw argument text over as the link text: {% unsubscribe_link click here %}.
        token, text = _tag_argument(stream)
        return _LinkNode(token, url=self.url, css_class=self.css_class, text=text or self.default_text)


class _UrlTag(Tag):
    block = False

    @staticmethod
    def url(context: RenderContext) -> str:
        raise NotImplementedError

    def parse(self, stream: TokenStream) -> Node:
        # Upstream ignores any argument; so do we, so its templates keep rendering.
        token, _ = _tag_argument(stream)
        return _UrlNode(token, url=self.url)


class UnsubscribeLinkTag(_LinkTag):
    name = "unsubscribe_link"
    css_class = "df-unsubscribe"
    default_text = "unsubscribe"
    url = staticmethod(unsubscribe_url)


class SubscriptionManagementLinkTag(_LinkTag):
    name = "subscription_management_link"
    css_class = "df-subscription-management"
    default_text = "manage subscriptions"
    url = staticmethod(subscription_management_url)


class UnsubscribeUrlTag(_UrlTag):
    name = "unsubscribe_url"
    url = staticmethod(unsubscribe_url)


class SubscriptionManagementUrlTag(_UrlTag):
    name = "subscription_management_url"
    url = staticmethod(subscription_management_url)


class ViewInBrowserUrlTag(_UrlTag):
    name = "view_in_browser_url"
    url = staticmethod(view_in_browser_url)


class LayoutTag(ExtendsTag):
    """LiquidJS's `{% layout 'name' %}`: python-liquid's `extends`, whose blocks it fills."""

    name = "layout"


def register_tags(env: Environment) -> None:
    """Add the custom tags, template inheritance and the `layout` alias to `env`."""
    for tag in (
        UnsubscribeLinkTag,
        SubscriptionManagementLinkTag,
        UnsubscribeUrlTag,
        SubscriptionManagementUrlTag,
        ViewInBrowserUrlTag,
        ExtendsTag,
        BlockTag,
        LayoutTag,
    ):
        env.add_tag(tag)

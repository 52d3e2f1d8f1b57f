"""Message rendering (§7.6): Liquid semantics, Dittofeed's tags, filters and layouts, MJML, the link
hashes of §5.3/§5.4, autoescape of hostile data, and the resource limits."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import Any

import pytest

from engine.bootstrap import WELCOME_TEMPLATE_BODY
from engine.errors import InvalidInput
from engine.messaging.render import (
    RenderContext,
    RenderError,
    compile_mjml,
    render_email_body,
    render_liquid,
    subscription_hash,
    subscription_management_url,
    unsubscribe_url,
    view_in_browser_url,
)

SECRET = "sub-secret"
VIEW_SECRET = "view-secret"
BASE = "https://feedgate.example.com"
PAGE = f"{BASE}/api/public/subscription-management/page"
HOSTILE = "<script>alert(1)</script>"


def _hmac(key: str, payload: str) -> str:
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


# The contract's formula, written out by hand: key order u, w, i, k; no whitespace.
USER_HASH = _hmac(SECRET, '{"u":"user-1","w":"ws-1","i":"ann@example.com","k":"email"}')
VIEW_HASH = _hmac(VIEW_SECRET, '{"w":"ws-1","m":"msg-1"}')
UNSUBSCRIBE = f"{PAGE}?w=ws-1&i=ann%40example.com&ik=email&h={USER_HASH}&s=group-1&sub=0"
MANAGE = f"{PAGE}?w=ws-1&i=ann%40example.com&ik=email&h={USER_HASH}&showAllChannels=true"
VIEW = f"{BASE}/api/public/view-in-browser?w=ws-1&m=msg-1&h={VIEW_HASH}"

CONTEXT = RenderContext(
    workspace_id="ws-1",
    user={"id": "user-1", "email": "ann@example.com", "firstName": "Ann", "plan": {"name": "pro"}},
    subscription_group_id="group-1",
    identifier_key="email",
    secrets={"subscription-key": SECRET, "view-in-browser-key": VIEW_SECRET},
    tags={"journeyId": "j-1"},
    message_id="msg-1",
    base_url=BASE + "/",
)

MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hi {{ user.firstName }}. {% unsubscribe_link %}</mj-text>
</mj-column></mj-section></mj-body></mjml>"""


def render(source: str, *, html: bool = False, **changes: Any) -> str:
    return render_liquid(source, replace(CONTEXT, **changes), html=html)


def render_error(source: str, *, html: bool = False, **changes: Any) -> str:
    with pytest.raises(RenderError) as caught:
        render(source, html=html, **changes)
    return caught.value.message


# --- Liquid semantics -------------------------------------------------------------------------------


def test_scope_variables() -> None:
    source = (
        "{{ user.firstName }} {{ user.plan.name }} {{ workspace_id }} {{ subscription_group_id }} "
        "{{ identifier_key }} {{ tags.journeyId }} {{ message_id }} {{ is_preview }}"
    )
    assert render(source) == "Ann pro ws-1 group-1 email j-1 msg-1 false"


def test_empty_template_renders_empty() -> None:
    assert render("") == ""


def test_default_filter_replaces_a_missing_value() -> None:
    assert render("Hi {{ user.lastName | default: 'there' }}!") == "Hi there!"
    assert render("Hi {{ user.firstName | default: 'there' }}!") == "Hi Ann!"


def test_an_undefined_variable_is_an_error_naming_it_and_its_line() -> None:
    assert render_error("Hello\n{{ user.lastName }}") == "line 2: user.lastName is undefined"
    assert "nope" in render_error("{{ nope }}")
    assert "user.missing" in render_error("{% for x in user.missing %}{% endfor %}")


def test_render_errors_are_client_errors() -> None:
    assert issubclass(RenderError, InvalidInput)


def test_if_is_lenient_about_undefined_variables() -> None:
    assert render("{% if user.lastName %}yes{% else %}no{% endif %}") == "no"
    assert render("{% if nothing.at.all %}yes{% else %}no{% endif %}") == "no"
    assert render("{% unless user.lastName %}none{% endunless %}") == "none"
    assert render("{% if user.lastName == 'x' or user.firstName %}yes{% endif %}") == "yes"
    assert render("{% if user.lastName == nil %}nil{% endif %}") == "nil"
    assert render("{% case user.lastName %}{% when 'x' %}x{% else %}other{% endcase %}") == "other"


def test_syntax_errors_and_unknown_filters_are_render_errors() -> None:
    assert render_error("a\n{% if %}") == "line 2: missing expression"
    assert "unknown filter 'shout'" in render_error("{{ user.firstName | shout }}")
    assert "divide by 0" in render_error("{{ 1 | divided_by: 0 }}")


def test_standard_and_json_filters() -> None:
    assert render("{{ user.firstName | upcase | append: '!' }}") == "ANN!"
    assert render("{{ user.plan | json }}") == '{"name": "pro"}'


def test_parsed_templates_are_shared_but_each_render_uses_its_own_context() -> None:
    source = "{{ user.firstName }} {% unsubscribe_url %}"
    first = render(source)
    second = render(source, user={"id": "user-2", "email": "bob@example.com", "firstName": "Bob"})
    assert first == f"Ann {UNSUBSCRIBE}"
    assert second.startswith("Bob ") and "i=bob%40example.com" in second
    assert render(source) == first


# --- links and hashes -------------------------------------------------------------------------------


def test_subscription_hash_is_the_contract_hmac() -> None:
    digest = subscription_hash(
        workspace_id="ws-1",
        user_id="user-1",
        identifier="ann@example.com",
        identifier_key="email",
        secret=SECRET,
    )
    assert digest == USER_HASH


def test_subscription_hash_keeps_non_ascii_as_utf8() -> None:
    expected = _hmac(SECRET, '{"u":"ü","w":"ws-1","i":"zoë@example.com","k":"email"}')
    digest = subscription_hash(
        workspace_id="ws-1", user_id="ü", identifier="zoë@example.com", identifier_key="email", secret=SECRET
    )
    assert digest == expected


def test_link_tags_render_dittofeeds_markup() -> None:
    assert render("{% unsubscribe_link %}") == (
        f'<a class="df-unsubscribe" clicktracking=off href="{UNSUBSCRIBE}" target="_blank">unsubscribe</a>'
    )
    assert render("{% unsubscribe_link click here %}") == (
        f'<a class="df-unsubscribe" clicktracking=off href="{UNSUBSCRIBE}" target="_blank">click here</a>'
    )
    assert render("{% subscription_management_link %}") == (
        f'<a class="df-subscription-management" clicktracking=off href="{MANAGE}" target="_blank">'
        "manage subscriptions</a>"
    )
    assert render("{% subscription_management_link Preferences %}").endswith(">Preferences</a>")


def test_url_tags_render_the_bare_urls() -> None:
    assert render("{% unsubscribe_url %}") == UNSUBSCRIBE
    assert render("{% subscription_management_url %}") == MANAGE
    assert render("{% view_in_browser_url %}") == VIEW


def test_the_link_helpers_match_the_tags() -> None:
    assert unsubscribe_url(CONTEXT) == UNSUBSCRIBE
    assert subscription_management_url(CONTEXT) == MANAGE
    assert view_in_browser_url(CONTEXT) == VIEW


def test_preview_links_say_so() -> None:
    preview = replace(CONTEXT, is_preview=True)
    assert unsubscribe_url(preview) == UNSUBSCRIBE + "&isPreview=true"
    assert subscription_management_url(preview) == MANAGE.replace(
        "&showAllChannels", "&isPreview=true&showAllChannels"
    )


def test_unsubscribe_without_a_group_links_to_the_page() -> None:
    assert unsubscribe_url(replace(CONTEXT, subscription_group_id=None)) == MANAGE.removesuffix(
        "&showAllChannels=true"
    )


def test_a_numeric_identifier_is_stringified() -> None:
    context = replace(CONTEXT, identifier_key="phone", user={"id": "user-1", "phone": 15550001111})
    digest = _hmac(SECRET, '{"u":"user-1","w":"ws-1","i":"15550001111","k":"phone"}')
    assert unsubscribe_url(context) == f"{PAGE}?w=ws-1&i=15550001111&ik=phone&h={digest}&s=group-1&sub=0"


@pytest.mark.parametrize(
    "changes",
    [
        {"secrets": {}},
        {"identifier_key": None},
        {"user": {"id": "user-1"}},
        {"user": {"id": "user-1", "email": ""}},
        {"user": {"email": "ann@example.com"}},
    ],
    ids=["no secret", "no identifier key", "no identifier", "empty identifier", "no user id"],
)
def test_subscription_urls_are_empty_without_secret_identifier_or_user_id(changes: dict[str, Any]) -> None:
    assert render("{% unsubscribe_url %}|{% subscription_management_url %}", **changes) == "|"
    assert render("{% unsubscribe_link %}", **changes) == (
        '<a class="df-unsubscribe" clicktracking=off href="" target="_blank">unsubscribe</a>'
    )


def test_view_in_browser_url_is_empty_without_message_id_or_key() -> None:
    assert render("{% view_in_browser_url %}", message_id=None) == ""
    assert render("{% view_in_browser_url %}", secrets={"subscription-key": SECRET}) == ""


def test_links_are_not_escaped_in_html_mode() -> None:
    assert render("{% unsubscribe_url %}", html=True) == UNSUBSCRIBE
    assert render("{% capture footer %}{% unsubscribe_link %}{% endcapture %}{{ footer }}", html=True) == (
        render("{% unsubscribe_link %}")
    )


# --- markdown and layouts -----------------------------------------------------------------------------


def test_markdown_filter_allows_html_and_breaks_lines() -> None:
    source = (
        "{% capture md %}## Welcome, {{ user.firstName }}\nline one\nline <b>two</b>{% endcapture %}"
        "{{ md | markdown }}"
    )
    assert render(source) == "<h2>Welcome, Ann</h2>\n<p>line one<br>\nline <b>two</b></p>\n"
    assert render(source, html=True) == render(source)


def test_markdown_of_a_trait_escapes_its_html_in_html_mode() -> None:
    source = "{{ user.bio | markdown }}"
    user = {"id": "user-1", "bio": f"**bold** {HOSTILE}"}
    assert render(source, html=True, user=user) == (
        "<p><strong>bold</strong> &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_base_email_layout() -> None:
    source = (
        "{% layout 'base-email' %}{% block style %}color: blue;{% endblock %}"
        "{% block content %}my content{% endblock %}"
    )
    html = render(source, html=True)
    assert html.startswith("<!DOCTYPE html>\n<html>")
    assert '<style type="text/css">color: blue;</style>' in html
    assert "<body>my content</body>" in html
    assert render(source.replace("layout", "extends", 1), html=True) == html


def test_markdown_email_layout() -> None:
    html = render(
        "{% layout 'markdown-email' %}{% block md-content %}# Hi {{ user.firstName }}{% endblock %}",
        html=True,
    )
    assert "<body><h1>Hi Ann</h1>\n</body>" in html


@pytest.mark.parametrize(
    "source", ["{% layout 'other' %}", "{% include '/etc/passwd' %}", "{% render '../x' %}"]
)
def test_no_template_but_the_layouts_can_be_loaded(source: str) -> None:
    assert "not found; only the layouts base-email, markdown-email exist" in render_error(source)


# --- MJML ---------------------------------------------------------------------------------------------


def test_mjml_is_compiled_to_html() -> None:
    html = render_email_body(MJML, CONTEXT)
    assert "<table" in html and "<mjml" not in html and "<mj-" not in html
    assert "Hi Ann." in html
    # MRML refuses the unquoted clicktracking=off that MJML.js accepts, so it is quoted before compiling.
    assert f'<a class="df-unsubscribe" clicktracking="off" href="{UNSUBSCRIBE}" target="_blank">' in html


def test_the_bootstrap_welcome_template_renders() -> None:
    html = render_email_body(WELCOME_TEMPLATE_BODY, CONTEXT)
    assert "Hi Ann, welcome!" in html and f'href="{UNSUBSCRIBE}"' in html


def test_text_that_is_not_mjml_passes_through() -> None:
    for text in ["<p>Hello</p>", "plain text", "<!DOCTYPE html><html><body>x</body></html>", ""]:
        assert compile_mjml(text) == text


def test_mjml_after_a_comment_is_still_mjml() -> None:
    assert "<table" in compile_mjml("<!-- header -->\n" + MJML.replace("{% unsubscribe_link %}", ""))


def test_invalid_mjml_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="MJML"):
        compile_mjml("<mjml><mj-body><mj-section>")


def test_mj_include_reads_no_file() -> None:
    with pytest.raises(RenderError, match="MJML"):
        compile_mjml('<mjml><mj-body><mj-include path="/etc/passwd" /></mj-body></mjml>')


# --- hostile data -------------------------------------------------------------------------------------


def test_hostile_trait_is_inert_in_html_and_raw_in_text() -> None:
    user = {"id": "user-1", "firstName": HOSTILE, "email": "ann@example.com"}
    assert render("{{ user.firstName }}", html=True, user=user) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert render("{{ user.firstName }}", user=user) == HOSTILE
    body = render_email_body(MJML, replace(CONTEXT, user=user))
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_liquid_inside_a_trait_is_printed_not_evaluated() -> None:
    user = {"id": "user-1", "firstName": "{{ secrets }}{% unsubscribe_url %}"}
    assert render("{{ user.firstName }}", user=user) == "{{ secrets }}{% unsubscribe_url %}"
    assert render("{{ user.firstName }}", html=True, user=user) == "{{ secrets }}{% unsubscribe_url %}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ user.__class__ }}",
        "{{ user.firstName.__class__ }}",
        "{{ user.items }}",
        "{{ user.__init__.__globals__ }}",
    ],
)
def test_templates_cannot_reach_python_internals(source: str) -> None:
    assert "is undefined" in render_error(source)


# --- limits -------------------------------------------------------------------------------------------


def test_loop_iterations_are_limited() -> None:
    assert render("{% for i in (1..3) %}{{ i }}{% endfor %}") == "123"
    assert (
        render_error("{% for i in (1..1000000000) %}{% endfor %}")
        == "line 1: loop iteration limit of 100000 reached"
    )
    assert "loop iteration limit" in render_error(
        "{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}"
    )


def test_output_is_limited() -> None:
    source = "{% for i in (1..99999) %}" + "x" * 20 + "{% endfor %}"
    assert "output limit of 1048576 characters reached" in render_error(source)
    doubling = "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}"
    assert "output limit of 1048576 characters reached" in render_error(doubling)


def test_output_limit_counts_characters_not_bytes() -> None:
    two_byte_characters = "{% for i in (1..65536) %}" + "é" * 16 + "{% endfor %}"
    assert len(render(two_byte_characters)) == 1024 * 1024
    assert "output limit of 1048576 characters reached" in render_error(two_byte_characters + "x")


def test_captured_output_counts_against_the_limit_of_the_output_it_is_in() -> None:
    half = "{% for i in (1..32768) %}" + "x" * 16 + "{% endfor %}"
    assert "output limit" in render_error(f"{half}{{% capture c %}}{half}x{{% endcapture %}}")
    assert len(render(f"{half}{{% capture c %}}{half}{{% endcapture %}}")) == 512 * 1024


def test_assigned_data_is_limited() -> None:
    doubling = "{% for i in (1..40) %}{% assign a = a | concat: a %}{% endfor %}"
    source = "{% assign a = 'x' | split: ',' %}" + doubling
    assert "assigned data is over the limit" in render_error(source)


def test_filters_cannot_materialise_huge_ranges() -> None:
    assert "range of 100000000 items is over the limit" in render_error("{{ (1..100000000) | join: ',' }}")


def test_scalar_filters_read_a_huge_range_without_materialising_it() -> None:
    huge = "(1..100000000000)"
    assert render(f"{{{{ {huge} | size }}}}") == "100000000000"
    assert "100000000001" in render(f"{{{{ {huge} | upcase }}}}")  # the range's text, not its items
    assert render(f"{{{{ nothing | default: {huge} }}}}") == "1..100000000000"
    assert render(f"{{{{ 'abc' | default: {huge} | capitalize }}}}") == "Abc"


def test_nesting_is_limited() -> None:
    source = "{% if true %}" * 40 + "x" + "{% endif %}" * 40
    assert "nesting" in render_error(source)

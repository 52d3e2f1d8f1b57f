"""Fuzzing the template renderer: whatever a template author types, rendering ends with text within
the output limit or a RenderError that says what is wrong — never another exception, never unbounded
output, never a file read. Templates are drawn from Liquid's own vocabulary (tags, filters, loops
over huge ranges, nested captures, includes) mixed with arbitrary text, so the parser and the
renderer both see hostile shapes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.messaging.liquid_env import OUTPUT_LIMIT
from engine.messaging.render import RenderContext, RenderError, compile_mjml, render_email_body, render_liquid

CONTEXT = RenderContext(
    workspace_id="ws",
    user={"id": "u-1", "firstName": "<script>alert(1)</script>", "plan": "pro", "items": [1, 2, 3]},
    subscription_group_id="sg",
    base_url="https://feedgate.test",
)
FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

_NAMES = st.sampled_from(
    ["user", "user.firstName", "user.items", "user.missing", "x", "y", "forloop", "tags"]
)
_LITERALS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.text(alphabet=st.characters(blacklist_characters="'"), max_size=8).map(lambda s: f"'{s}'"),
    st.sampled_from(["nil", "true", "false", "(1..1000000000)", "(1..3)", "''", "1.5e308"]),
)
_FILTERS = st.sampled_from(
    [
        "upcase",
        "append: 'x'",
        "times: 99999999999",
        "divided_by: 0",
        "modulo: 0",
        "split: ''",
        "join: 'ab'",
        "slice: -1, 99999999",
        "truncate: -5",
        "markdown",
        "escape",
        "json",
        "date: '%Y'",
        "default: 'd'",
        "size",
        "plus: 'a'",
        "no_such_filter",
        "url_encode",
        "strip_html",
        "first",
        "remove: nil",
        "replace: 'a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
    ]
)
_EXPRESSIONS = st.builds(
    lambda head, filters: " | ".join([head, *filters]),
    st.one_of(_NAMES, _LITERALS),
    st.lists(_FILTERS, max_size=3),
)


def _fragments(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda e: f"{{{{ {e} }}}}", _EXPRESSIONS),
        st.builds(lambda e, body: f"{{% if {e} %}}{body}{{% else %}}x{{% endif %}}", _EXPRESSIONS, children),
        st.builds(lambda r, body: f"{{% for i in {r} %}}{body}{{% endfor %}}", _LITERALS, children),
        st.builds(lambda e: f"{{% assign x = {e} %}}{{% assign y = x | append: x %}}", _EXPRESSIONS),
        st.builds(lambda body: f"{{% capture x %}}{body}{body}{{% endcapture %}}{{{{ x }}}}", children),
        st.builds(lambda body: f"{{% raw %}}{body}{{% endraw %}}", children),
        st.builds(lambda e: f"{{% case {e} %}}{{% when 1 %}}a{{% else %}}b{{% endcase %}}", _EXPRESSIONS),
        st.sampled_from(
            [
                "{% include '/etc/passwd' %}",
                "{% render '../../pyproject.toml' %}",
                "{% layout 'nonexistent' %}",
                "{% unsubscribe_link %}",
                "{% subscription_management_link 'Manage' %}",
                "{% view_in_browser_url %}",
                "{% tablerow i in (1..100000) %}{{ i }}{% endtablerow %}",
                "{% cycle 'a', 'b' %}",
                "{% increment n %}{% decrement n %}",
                "{% liquid assign z = 1\n echo z %}",
                "{%- comment -%}{{ unclosed {%- endcomment -%}",
                "{{",
                "{%",
                "{% endfor %}",
                "{% if %}",
                "{{ user['firstName'] }}",
                "{{ user[user] }}",
                "{{ (1..5) }}",
            ]
        ),
        st.text(max_size=20),
    )


TEMPLATES = st.recursive(
    _fragments(st.just("")), lambda inner: st.lists(_fragments(inner), max_size=4).map("".join), max_leaves=12
)


def _render_or_refuse(source: str, *, html: bool) -> None:
    try:
        output = render_liquid(source, CONTEXT, html=html)
    except RenderError as error:
        assert error.message, source
        return
    assert isinstance(output, str)
    assert len(output) <= OUTPUT_LIMIT, source
    assert "root:" not in output  # /etc/passwd never read
    if html:
        assert "<script>alert(1)</script>" not in output


@FUZZ
@given(TEMPLATES)
def test_any_text_template_renders_bounded_or_is_refused(source: str) -> None:
    _render_or_refuse(source, html=False)


@FUZZ
@given(TEMPLATES)
def test_any_html_template_renders_bounded_and_escaped_or_is_refused(source: str) -> None:
    _render_or_refuse(source, html=True)


_MJML_TAGS = st.sampled_from(
    [
        "mjml",
        "mj-body",
        "mj-section",
        "mj-column",
        "mj-text",
        "mj-button",
        "mj-include",
        "mj-raw",
        "mj-image",
        "p",
    ]
)
_ATTRIBUTES = st.sampled_from(
    ["", ' path="/etc/passwd"', ' href="javascript:alert(1)"', ' width="-1px"', " x", ' a="<"']
)
MJML = st.recursive(
    st.one_of(st.text(max_size=15), TEMPLATES.filter(lambda s: len(s) < 80)),
    lambda inner: st.builds(
        lambda tag, attributes, children, close: (
            f"<{tag}{attributes}>{''.join(children)}" + (f"</{tag}>" if close else "")
        ),
        _MJML_TAGS,
        _ATTRIBUTES,
        st.lists(inner, max_size=3),
        st.booleans(),
    ),
    max_leaves=10,
)


@FUZZ
@given(MJML)
def test_any_mjml_compiles_or_is_refused(source: str) -> None:
    try:
        html = compile_mjml(source)
    except RenderError as error:
        assert error.message
        return
    assert isinstance(html, str)
    assert "root:" not in html


@FUZZ
@given(MJML)
def test_any_email_body_renders_or_is_refused(source: str) -> None:
    try:
        html = render_email_body(source, CONTEXT)
    except RenderError as error:
        assert error.message
        return
    assert len(html) <= 4 * OUTPUT_LIMIT
    assert "<script>alert(1)</script>" not in html

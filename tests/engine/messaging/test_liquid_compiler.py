"""A compiled template renders what python-liquid renders: for every construct the compiler translates,
on values of every JSON shape, the compiled function returns the interpreter's text, and raises where
the interpreter raises (the caller then renders with the interpreter, which says what is wrong).
Templates using anything else are not compiled at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.messaging.liquid_compiler import compile_template
from engine.messaging.liquid_env import (
    HTML_ENV,
    LOCAL_NAMESPACE_LIMIT,
    LOOP_ITERATION_LIMIT,
    OUTPUT_LIMIT,
    TEXT_ENV,
)
from engine.messaging.liquid_tags import CURRENT_CONTEXT
from engine.messaging.render import RenderContext, RenderError, render_liquid

MESSAGE = RenderContext(
    workspace_id="ws",
    user={"id": "u-1", "email": "a@example.com"},
    subscription_group_id="sg",
    identifier_key="email",
    secrets={"subscription-key": "k"},
    message_id="m-1",
    base_url="https://feedgate.test",
)

USER: dict[str, Any] = {
    "id": "u-1",
    "name": 'Ada <b>&amp;</b> "Lovelace"',
    "plan": "pro",
    "n": 7,
    "f": 2.5,
    "zero": 0,
    "flag": True,
    "off": False,
    "none": None,
    "emptystr": "",
    "space": "  ",
    "list": [3, "two", {"k": "v"}, None, 1.5],
    "nums": [1, 2, 3],
    "none_list": [],
    "obj": {"k": "v", "size": 99, "first": "F", "deep": {"er": [10, 20]}},
    "no_obj": {},
    "key": "plan",
    "liquid": "{{ user.plan }}{% if true %}x{% endif %}",
    "grid": [[1, 2], [3, 4]],
}


def _variables(user: Mapping[str, Any]) -> dict[str, object]:
    return {"user": user, "tags": {"k": "t"}, "secrets": {}, "is_preview": False, "message_id": "m-1"}


def _outcomes(source: str, variables: Mapping[str, object], *, html: bool) -> tuple[object, object]:
    """(interpreter, compiled): each the rendered text, or "error"."""
    template = (HTML_ENV if html else TEXT_ENV).from_string(source)
    compiled = compile_template(template)
    assert compiled is not None, f"not compiled: {source}"
    reset = CURRENT_CONTEXT.set(MESSAGE)
    try:
        try:
            expected: object = str(template.render(**variables))
        except Exception:
            expected = "error"
        try:
            actual: object = str(compiled(variables))
        except Exception:
            actual = "error"
    finally:
        CURRENT_CONTEXT.reset(reset)
    return expected, actual


COMPILED_TEMPLATES = [
    "",
    "plain text only, <b>markup</b> & all",
    "Hi {{ user.name }}!",
    "{{ user.n }} {{ user.f }} {{ user.flag }} {{ user.off }} {{ user.none }}|{{ user.list }}",
    "{{ user.obj }}|{{ user.nums }}",
    "{{ 'a<b' }} {{ 1.5 }} {{ 10 }} {{ true }} {{ nil }} {{ -3 }}",
    "{{ user.missing }}",
    "{{ nobody }}",
    "{{ nobody.at.all | default: 'z' }}",
    "{{ user.missing | default: 'x' }} {{ user.emptystr | default: 'e' }} {{ user.off | default: 'o' }}",
    "{{ user.off | default: 'o', allow_false: true }} {{ user.zero | default: 'z' }}",
    "{{ user.missing | upcase }}",
    "{{ user.list.size }} {{ user.list.first }} {{ user.list.last }} {{ user.list[1] }} {{ user.list[-1] }}",
    "{{ user.list[9] }}",
    "{{ user.name.size }} {{ user.obj.size }} {{ user.obj.first }} {{ user.no_obj.first }}",
    "{{ user.name.first }}",
    "{{ user.obj.deep.er[1] }} {{ user.obj.deep.er.last }} {{ user['plan'] }} {{ user[user.key] }}",
    "{{ user[tags.k] | default: 'none' }} {{ user.grid[1][0] }} {{ user.list[2].k }}",
    "{{ user.name | upcase | append: '<i>' | prepend: user.plan }} {{ user.name | escape }}",
    "{{ user.nums | join: '<' }} {{ user.nums | first }} {{ user.n | times: 1.5 | round: 1 }}",
    "{{ user.name | size }} {{ user.list | json }} {{ user.name | markdown }}",
    "{{ user.n | divided_by: 0 }}",
    "{{ user.name | truncate: 5, '!' }} {{ user.name | split: ' ' | last }}",
    "{{ user.liquid }}",
    """{{ user["it's \\"quoted\\""] | default: 'q' }}{{ user['a\\b'] | default: 'b' }}""",
    "{{ partial }} {{ tags.k }} {{ message_id }} {{ is_preview }}",
    "{% if user.plan == 'pro' %}P{% elsif user.plan == 'team' %}T{% else %}F{% endif %}",
    "{% if user.plan == 'free' %}P{% elsif user.n > 5 %}big{% elsif user.n > 1 %}mid{% endif %}.",
    "{% unless user.flag %}no{% else %}yes{% endunless %}{% unless user.off %}U{% endunless %}",
    "{% unless user.flag %}a{% elsif user.n %}b{% else %}c{% endunless %}",
    "{% if user.n > 3 and user.n <= 10 or user.flag %}y{% else %}n{% endif %}",
    "{% if user.off or user.none or user.missing %}y{% else %}n{% endif %}",
    "{% if user.n >= 7 and user.f < 3 and user.f != 2 %}y{% endif %}",
    "{% if user.name contains 'Ada' %}c{% endif %}{% if user.nums contains 2 %}d{% endif %}",
    "{% if user.obj contains 'k' %}k{% endif %}{% if user.missing contains 'x' %}m{% endif %}",
    "{% if user.none_list == empty %}E{% endif %}{% if user.space == blank %}B{% endif %}",
    "{% if user.none == nil %}N{% endif %}{% if user.missing == nil %}M{% endif %}",
    "{% if user.missing %}m{% else %}not{% endif %}{% if user.missing == false %}f{% endif %}",
    (
        "{% if user.flag == true %}t{% endif %}{% if user.zero == false %}z"
        "{% endif %}{% if 1 == 1.0 %}o{% endif %}"
    ),
    "{% if user.name > 3 %}x{% endif %}",
    "{% if user.name < 'B' %}lt{% endif %}{% if user.none < 1 %}none{% endif %}",
    (
        "{% for i in user.nums %}{{ forloop.index }}/{{ forloop.length }}:{{ i }}"
        "{% if forloop.last %}.{% endif %}{% endfor %}"
    ),
    "{% for i in user.nums %}{{ forloop.index0 }}{{ forloop.rindex }}{{ forloop.first }}{% endfor %}",
    "{% for r in user.grid %}{% for c in r %}{{ forloop.parentloop.index }}{{ c }}{% endfor %};{% endfor %}",
    (
        "{% for i in user.nums %}{% if i == 2 %}{% continue %}{% endif %}"
        "{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"
    ),
    (
        "{% for i in user.none_list %}x{% else %}empty{% endfor %}"
        "{% for i in user.missing %}y{% else %}u{% endfor %}"
    ),
    "{% for p in user.obj %}{{ p[0] }}={{ p[1] }};{% endfor %}",
    "{% for c in user.name %}[{{ c }}]{% endfor %}{% for c in user.n %}n{% endfor %}",
    "{% for user in user.nums %}{{ user }}{% endfor %}{{ user.plan }}",
    "{% for forloop in user.nums %}{{ forloop }}{% endfor %}",
    "{% for i in user.nums %}{{ forloop.parentloop }}{% endfor %}",
    "{{ forloop.index }}",
    "{% for i in user.list %}{{ i.k | default: i }}|{% endfor %}",
    (
        "{% for i in user.nums %}{% for j in user.nums %}{% if j > i %}"
        "{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}"
    ),
    (
        "{% for i in user.nums %}{% for j in user.none_list %}"
        "{% else %}{% break %}{% endfor %}{{ i }}{% endfor %}"
    ),
    "{%- if true -%}  x  {%- endif -%}|{{- user.plan -}}  |  {{ user.plan -}}  !",
    "a{% if true %}   \n  {% endif %}|{% for i in user.nums %}  {% endfor %}|"
    "{% unless false %} {% endunless %}b",
    "{% if true %} {% if user.flag %}  {% endif %} {% else %}x{% endif %}|",
    "{% comment %}{{ user.name }}{% endcomment %}{% # inline comment %}c",
    "{% raw %}{{ user.name }}{% endraw %}",
    "{% unsubscribe_link %} {% unsubscribe_link click <here> %} {% subscription_management_link %}",
    "{% unsubscribe_url %} {% subscription_management_url %} {% view_in_browser_url %}",
    "{{ user.name | default: 'x' | upcase }}{% if user.name %}{{ user.name | size }}{% endif %}",
    "{% assign x = user.name | upcase %}{{ x }} {% assign user = 'shadow' %}{{ user }} {{ user.plan }}",
    "{{ x | default: 'before' }}{% assign x = 1 %}{{ x | plus: 1 }}{% assign x = x | plus: 5 %}{{ x }}",
    "{% for i in user.nums %}{% assign last = i %}{% assign i = 'x' %}{{ i }}{% endfor %}{{ last }}{{ i }}",
    "{% assign partial = 'p' %}{{ partial }}{% assign forloop = 'f' %}{{ forloop }}",
    "{% capture x %}<b>{{ user.name }}</b>{% endcapture %}{{ x }}|{{ x | size }}|{{ x | upcase }}",
    "{% capture x %}  {% if true %} {% endif %} {% endcapture %}[{{ x }}]",
    (
        "{% capture outer %}a{% capture inner %}{{ user.plan }}{% endcapture %}b{{ inner }}{% endcapture %}"
        "{{ outer }}{{ inner }}"
    ),
    "{% if true %}{% capture x %}hidden{% endcapture %}{% endif %}{{ x }}",
    "{% for i in user.nums %}{% capture x %}{{ x }}{{ i }}{% endcapture %}{% endfor %}{{ x }}",
    "{% if user.flag %}{% assign x = 'yes' %}{% endif %}{{ x | default: 'no' }}",
]


@pytest.mark.parametrize("html", [False, True], ids=["text", "html"])
@pytest.mark.parametrize("source", COMPILED_TEMPLATES)
def test_a_compiled_template_renders_what_the_interpreter_renders(source: str, html: bool) -> None:
    expected, actual = _outcomes(source, _variables(USER), html=html)
    assert actual == expected, source


@pytest.mark.parametrize(
    "source",
    [
        "{% case user.plan %}{% when 'pro' %}p{% endcase %}",
        "{% for i in (1..3) %}{{ i }}{% endfor %}",
        "{% for i in user.nums limit: 2 %}{{ i }}{% endfor %}",
        "{% for i in user.nums offset: 1 %}{{ i }}{% endfor %}",
        "{% for i in user.nums reversed %}{{ i }}{% endfor %}",
        "{% cycle 'a', 'b' %}",
        "{% increment n %}",
        "{% echo user.plan %}",
        "{% liquid echo user.plan %}",
        "{% tablerow i in user.nums %}{{ i }}{% endtablerow %}",
        "{% layout 'base-email' %}{% block content %}x{% endblock %}",
        "{% break %}",
    ],
)
def test_templates_beyond_the_subset_are_left_to_the_interpreter(source: str) -> None:
    assert compile_template(TEXT_ENV.from_string(source)) is None


def test_a_long_elsif_chain_compiles() -> None:
    # Python bounds the indentation of a function: the chain must not nest one level per branch.
    chain = "".join(f"{{% elsif user.n == {k} %}}{k}" for k in range(200))
    source = f"{{% if user.n == -1 %}}none{chain}{{% else %}}other{{% endif %}}"
    assert _outcomes(source, _variables(USER), html=False) == ("7", "7")


def test_a_huge_template_is_left_to_the_interpreter() -> None:
    assert compile_template(TEXT_ENV.from_string("{{ user.n }}" * 10_000)) is None


def test_over_the_assigned_data_limit_the_render_is_the_interpreters_error() -> None:
    big = {**USER, "big": "x" * (LOCAL_NAMESPACE_LIMIT // 2)}
    source = "{% assign a = user.big %}{% capture b %}{{ user.big }}{% endcapture %}{{ a | size }}"
    expected, actual = _outcomes(source, _variables(big), html=False)
    assert expected == actual == "error"
    with pytest.raises(RenderError, match="assigned data is over the limit"):
        render_liquid(source, RenderContext(workspace_id="ws", user=big))


def test_the_builtin_names_are_left_to_the_interpreter() -> None:
    # `now` is python-liquid's own variable: the compiled render defers to the interpreter for it.
    expected, actual = _outcomes("{{ now | date: '%Y' }}", _variables(USER), html=False)
    assert expected != "error"
    assert actual == "error"
    assert render_liquid("{{ now | date: '%Y' }}", MESSAGE) == expected


def test_over_the_loop_limit_the_render_is_the_interpreters_error() -> None:
    many = {**USER, "many": list(range(400))}
    source = "{% for a in user.many %}{% for b in user.many %}{{ b }}{% endfor %}{% endfor %}"
    expected, actual = _outcomes(source, _variables(many), html=False)
    assert expected == actual == "error"
    context = RenderContext(workspace_id="ws", user=many)
    with pytest.raises(RenderError, match=f"loop iteration limit of {LOOP_ITERATION_LIMIT}"):
        render_liquid(source, context)


def test_over_the_output_limit_the_render_is_the_interpreters_error() -> None:
    big = {**USER, "big": "x" * (OUTPUT_LIMIT // 4), "nums": list(range(5))}
    source = "{% for i in user.nums %}{{ user.big }}{% endfor %}"
    expected, actual = _outcomes(source, _variables(big), html=True)
    assert expected == actual == "error"
    with pytest.raises(RenderError, match="output limit"):
        render_liquid(source, RenderContext(workspace_id="ws", user=big), html=True)


def test_render_liquid_answers_the_interpreters_error_for_a_compiled_template() -> None:
    with pytest.raises(RenderError, match="line 2: user.missing is undefined"):
        render_liquid("ok\n{{ user.missing }}", RenderContext(workspace_id="ws", user={"id": "u"}))


# -- randomised: templates drawn from the compiled subset, values of every JSON shape -----------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-10, 10, allow_nan=False).map(lambda f: round(f, 2)),
    st.sampled_from(["", " ", "a", "b c", "<b>&</b>", "pro", "{{ x }}", "Ünï", "2", "a,b"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "size", "first", "a"]), inner, max_size=3),
    ),
    max_leaves=6,
)
_USERS = st.fixed_dictionaries(
    {
        "id": st.just("u"),
        "a": _VALUES,
        "b": _VALUES,
        "c": _VALUES,
        "list": st.lists(_VALUES, min_size=1, max_size=3),
        "key": st.sampled_from(["a", "b", "zz"]),
    }
)

_PATHS = st.sampled_from(
    [
        "user.a",
        "user.b",
        "user.c",
        "user.a.k",
        "user.b.size",
        "user.c.first",
        "user.a.last",
        "user.b[0]",
        "user.c[1].k",
        "user.list",
        "user.list[0]",
        "user.list.first.k",
        "user[user.key]",
        "user.zz",
        "nobody",
        "tags.k",
        "partial",
        "i",
        "j",
        "forloop.index",
        "forloop.first",
        "forloop.parentloop.index0",
        "x",
        "y.size",
        "tags.k",
    ]
)
# Names a random template assigns: its own, a loop variable's, and a render variable's.
_LOCAL_NAMES = st.sampled_from(["x", "y", "i", "tags"])
_LITERALS = st.sampled_from(["'a'", "'<b>'", "''", "1", "0", "2.5", "true", "false", "nil", "empty", "blank"])
_FILTERS = st.sampled_from(
    [
        "default: 'd'",
        "default: user.b",
        "default: 'f', allow_false: true",
        "upcase",
        "downcase",
        "size",
        "append: '<x>'",
        "prepend: user.a",
        "plus: 1",
        "times: 2",
        "round: 1",
        "join: ','",
        "first",
        "last",
        "escape",
        "strip",
        "capitalize",
        "json",
        "split: ','",
        "sort",
        "uniq",
        "reverse",
        "compact",
        "map: 'k'",
        "where: 'k'",
        "abs",
        "at_most: 3",
        "url_encode",
        "strip_html",
        "newline_to_br",
        "truncate: 3",
        "slice: 1",
        "date: '%Y'",
        "replace: 'a', 'b'",
    ]
)
_OUTPUTS = st.builds(
    lambda head, filters: " | ".join([head, *filters]),
    st.one_of(_PATHS, _LITERALS),
    st.lists(_FILTERS, max_size=3),
)
_OPERATORS = st.sampled_from(["==", "!=", "<", ">", "<=", ">=", "contains"])
_OPERANDS = st.one_of(_PATHS, _LITERALS)
_COMPARISONS = st.one_of(
    _OPERANDS, st.builds(lambda a, op, b: f"{a} {op} {b}", _OPERANDS, _OPERATORS, _OPERANDS)
)
_CONDITIONS = st.builds(
    lambda first, rest: first + "".join(f" {op} {c}" for op, c in rest),
    _COMPARISONS,
    st.lists(st.tuples(st.sampled_from(["and", "or"]), _COMPARISONS), max_size=2),
)
# break and continue are compiled only inside a loop: they end loop bodies.
_INTERRUPTS = st.builds(
    lambda c, which, rest: f"{{% if {c} %}}{{% {which} %}}{{% endif %}}{rest}",
    _CONDITIONS,
    st.sampled_from(["break", "continue"]),
    st.just("after"),
)
_TEXT = st.sampled_from(["", " ", "\n", "x", " <p> ", "&amp;", "  \n  "])
_TRIM = st.sampled_from(["", "-"])


def _fragments(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        _TEXT,
        st.builds(lambda e, left, right: f"{{{{{left} {e} {right}}}}}", _OUTPUTS, _TRIM, _TRIM),
        st.builds(
            lambda c, body, alt, other: (
                f"{{% if {c} %}}{body}{{% elsif {alt} %}}{other}{{%- else -%}}E{{% endif %}}"
            ),
            _CONDITIONS,
            children,
            _CONDITIONS,
            children,
        ),
        st.builds(lambda c, body: f"{{% unless {c} %}}{body}{{% endunless %}}", _CONDITIONS, children),
        st.builds(lambda name, e: f"{{% assign {name} = {e} %}}", _LOCAL_NAMES, _OUTPUTS),
        st.builds(
            lambda name, body: f"{{% capture {name} %}}{body}{{% endcapture %}}", _LOCAL_NAMES, children
        ),
        st.builds(
            lambda var, path, body, other: (
                f"{{% for {var} in {path} %}}{body}{{% else %}}{other}{{% endfor %}}"
            ),
            st.sampled_from(["i", "j", "user"]),
            st.sampled_from(["user.list", "user.list", "user.a", "user.list.first", "user[user.key]"]),
            st.builds(lambda before, after: before + after, children, st.one_of(st.just(""), _INTERRUPTS)),
            _TEXT,
        ),
        st.sampled_from(
            ["{% unsubscribe_url %}", "{% unsubscribe_link <b>x</b> %}", "{% comment %}c{% endcomment %}"]
        ),
    )


_TEMPLATES = st.recursive(
    _fragments(st.just("")), lambda inner: st.lists(_fragments(inner), max_size=4).map("".join), max_leaves=10
)
RANDOM = settings(
    max_examples=800, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@RANDOM
@given(_TEMPLATES, _USERS, st.booleans())
def test_random_templates_on_random_values_render_as_the_interpreter_renders(
    source: str, user: dict[str, Any], html: bool
) -> None:
    expected, actual = _outcomes(source, _variables(user), html=html)
    assert actual == expected, source

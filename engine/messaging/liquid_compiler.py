"""Compiling a parsed Liquid template into one Python function, for the templates a send renders
thousands of times.

python-liquid renders by walking its syntax tree: every output statement goes through half a dozen
method calls (node, filtered expression, path, context lookup, scope chain map, buffer) before a
character is written, most of a message's cost. The compiled function does the same operations on the
same values, in straight-line code: python-liquid's own filters, item getter, comparisons, truthiness,
stringification and undefined objects, so a compiled render's output is the interpreter's.

It is trusted only for renders that succeed. Anything it cannot be sure of (an undefined value output,
a filter error, a loop, output or assigned-data limit) raises, and the caller renders with the
interpreter instead, which produces the canonical error. Templates using anything outside the common
subset (output, if/elsif/else, unless, for with else/break/continue, assign, capture, comments, raw,
our link tags) are not compiled at all (`compile_template` is None) and always render with the
interpreter: case, cycle, increment, echo, tablerow, layouts, range literals, loop modifiers.
"""

from __future__ import annotations

import itertools
import keyword
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, cast

from liquid import BoundTemplate, Markup, RenderContext
from liquid.ast import BlockNode, Node
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions.arguments import KeywordArgument, PositionalArgument
from liquid.builtin.expressions.filtered import Filter, FilteredExpression
from liquid.builtin.expressions.logical import (
    BooleanExpression,
    ContainsExpression,
    EqExpression,
    GeExpression,
    GtExpression,
    LeExpression,
    LogicalAndExpression,
    LogicalNotExpression,
    LogicalOrExpression,
    LtExpression,
    NeExpression,
    _contains,
    _eq,
    _le,
    _lt,
    is_truthy,
)
from liquid.builtin.expressions.path import Path
from liquid.builtin.expressions.primitive import (
    Blank,
    Empty,
    FalseLiteral,
    FloatLiteral,
    IntegerLiteral,
    Nil,
    StringLiteral,
    TrueLiteral,
)
from liquid.builtin.output import OutputNode
from liquid.builtin.tags.assign_tag import AssignNode
from liquid.builtin.tags.capture_tag import CaptureNode
from liquid.builtin.tags.comment_tag import CommentNode
from liquid.builtin.tags.for_tag import BreakNode, ContinueNode, ForLoop, ForNode
from liquid.builtin.tags.if_tag import IfNode
from liquid.builtin.tags.unless_tag import UnlessNode
from liquid.context import _segments_str
from liquid.stringify import to_liquid_string
from markupsafe import escape

from engine.messaging.liquid_tags import MarkupNode

CompiledTemplate = Callable[[Mapping[str, object]], str]

# Loops nest at most this deep in a compiled template (python-liquid's context depth limit is 30).
_MAX_LOOP_DEPTH = 8
# Names python-liquid resolves from its built-in namespace when no variable has them.
_BUILTIN_NAMES = frozenset({"now", "today"})
_SPECIAL_KEYS = frozenset({"size", "first", "last"})
# Beyond this many lines of Python a template is interpreted: a huge template is rarely sent often
# enough to repay compiling it.
_MAX_LINES = 20_000


class _Unsupported(Exception):
    """The template uses something this compiler does not translate."""


class _Fallback(Exception):
    """A compiled render that must be redone by the interpreter (a limit, a missing built-in)."""


_MISSING = object()


def compile_template(template: BoundTemplate) -> CompiledTemplate | None:
    """The template as a function of its render variables, or None when it must be interpreted.

    The function raises on anything but a clean render; the interpreter then says what is wrong.
    """
    env = template.env
    if template.globals or template.matter or not env.suppress_blank_control_flow_blocks:
        return None
    try:
        return _Compiler(template).compile()
    except (_Unsupported, SyntaxError, RecursionError):
        # SyntaxError: Python's own bounds on generated code (indentation depth); the interpreter has
        # its own limits for such templates.
        return None


class _Compiler:
    def __init__(self, template: BoundTemplate) -> None:
        self.template = template
        self.env = template.env
        self.autoescape = bool(self.env.autoescape)
        self.lines: list[str] = []
        self.constants: dict[str, object] = {}
        self.names = itertools.count()
        # The loops around the code being emitted, innermost last: (Liquid variable, Python local of
        # its item, Python local of its forloop drop or None).
        self.loops: list[tuple[str, str, str | None]] = []
        # Where output goes: (its append, its character count, the count's limit or None). A capture
        # writes to a buffer of its own.
        limit = self.env.output_stream_limit
        self.buffer: tuple[str, str, str | None] = ("a", "n", None if limit is None else str(limit))
        # Names the template assigns or captures anywhere: they are looked up among its locals first.
        self.assigned = _assigned_names(template.nodes)
        # Loop drops cost a little per iteration: made only when the template may read one.
        self.uses_forloop = "forloop" in "".join(str(node) for node in template.nodes)
        # python-liquid's item getter and loop rules read only the environment's options, so one probe
        # context serves every render.
        probe = RenderContext(self.env.from_string(""))
        self.constants.update(
            _probe=probe,
            _walk=_make_walk(probe),
            _MISSING=_MISSING,
            _Fallback=_Fallback,
            _to_liquid_string=to_liquid_string,
            _escape=escape,
            _is_truthy=is_truthy,
            _eq=_eq,
            _le=_le,
            _lt=_lt,
            _contains=_contains,
            _ForLoop=ForLoop,
            _undefined=self.env.undefined,
            _locals_size=_locals_size,
            _Markup=Markup,
        )

    def compile(self) -> CompiledTemplate:
        self.lines = ["def render(G):", " out = []", " a = out.append", " n = 0"]
        if self.assigned:
            self.lines.append(" L = {}")
        self.block(self.template.nodes, 1, suppressed=False, depth=0)
        self.lines.append(' return "".join(out)')
        namespace = dict(self.constants)
        exec(compile("\n".join(self.lines), f"<liquid {self.template.name!r}>", "exec"), namespace)  # noqa: S102
        return cast(CompiledTemplate, namespace["render"])

    # -- helpers ---------------------------------------------------------------------------------

    def constant(self, value: object) -> str:
        name = f"_c{next(self.names)}"
        self.constants[name] = value
        return name

    def temp(self) -> str:
        return f"t{next(self.names)}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append(" " * indent + line)
        if len(self.lines) > _MAX_LINES:
            raise _Unsupported("template too long to compile")

    def write(self, indent: int, text: str, length: int | None = None) -> None:
        """Append the string `text` (a local or a constant of `length` characters), within the output
        limit."""
        append, count, limit = self.buffer
        self.emit(indent, f"{count} += {length if length is not None else f'len({text})'}")
        self.emit(indent, f"{append}({text})")
        if limit is not None:
            self.emit(indent, f"if {count} > {limit}: raise _Fallback")

    # -- nodes -----------------------------------------------------------------------------------

    def block(self, nodes: list[Node], indent: int, *, suppressed: bool, depth: int) -> None:
        self.emit(indent, "pass")  # a block may emit nothing else
        for node in nodes:
            self.node(node, indent, suppressed=suppressed, depth=depth)

    def child_block(self, block: BlockNode, indent: int, *, suppressed: bool, depth: int) -> None:
        # python-liquid renders a control-flow block holding only whitespace to nowhere.
        self.block(block.nodes, indent, suppressed=suppressed or block.blank, depth=depth)

    def node(self, node: Any, indent: int, *, suppressed: bool, depth: int) -> None:
        # Any: python-liquid's nodes and expressions are told apart by exact type, not narrowed.
        kind = type(node)
        if kind is ContentNode:
            if not suppressed and node.text:
                self.write(indent, self.constant(node.text), len(node.text))
        elif kind is OutputNode:
            value = self.expression(node.expression, indent)
            if not suppressed:
                text = self.temp()
                # Strings (most values) are what to_liquid_string would return them as.
                plain = f"_escape({value})" if self.autoescape else value
                slow = f"_to_liquid_string({value}, {self.autoescape})"
                self.emit(indent, f"{text} = {plain} if type({value}) is str else {slow}")
                self.write(indent, text)
        elif isinstance(node, MarkupNode):
            if not suppressed:
                text = self.temp()
                self.emit(indent, f"{text} = {self.constant(node)}.markup({self.autoescape})")
                self.write(indent, text)
        elif isinstance(node, CommentNode):
            pass
        elif kind is AssignNode:
            self.assign(node.name, self.expression(node.expression, indent), indent)
        elif kind is CaptureNode:
            self.capture(node, indent, suppressed=suppressed, depth=depth)
        elif kind is IfNode or kind is UnlessNode:
            self.conditional(node, indent, suppressed=suppressed, depth=depth, negate=kind is UnlessNode)
        elif kind is ForNode:
            self.loop(node, indent, suppressed=suppressed, depth=depth)
        elif kind is BreakNode or kind is ContinueNode:
            if not self.loops:
                raise _Unsupported("break or continue outside a loop")
            self.emit(indent, "break" if kind is BreakNode else "continue")
        else:
            raise _Unsupported(kind.__name__)

    def conditional(self, node: Any, indent: int, *, suppressed: bool, depth: int, negate: bool) -> None:
        """IfNode and UnlessNode: the first condition (negated for unless), then each `elsif` until one
        holds, then the `else` block. A flag, not nesting, chains them: Python bounds indentation."""
        done = self.temp()
        test = self.boolean(node.condition, indent)
        self.emit(indent, f"{done} = {'not ' if negate else ''}{test}")
        self.emit(indent, f"if {done}:")
        self.child_block(node.consequence, indent + 1, suppressed=suppressed, depth=depth)
        for alternative in node.alternatives:
            self.emit(indent, f"if not {done}:")
            test = self.boolean(alternative.expression, indent + 1)
            self.emit(indent + 1, f"if {test}:")
            self.emit(indent + 2, f"{done} = True")
            self.child_block(alternative.block, indent + 2, suppressed=suppressed, depth=depth)
        if node.default is not None:
            self.emit(indent, f"if not {done}:")
            self.child_block(node.default, indent + 1, suppressed=suppressed, depth=depth)

    def assign(self, name: str, value: str, indent: int) -> None:
        """Set a template local, within python-liquid's limit on their total size."""
        self.emit(indent, f"L[{str(name)!r}] = {value}")
        limit = self.env.local_namespace_limit
        if limit:
            self.emit(indent, f"if _locals_size(L) > {int(limit)}: raise _Fallback")

    def capture(self, node: Any, indent: int, *, suppressed: bool, depth: int) -> None:
        """Render the block to a buffer of its own and assign its text. As python-liquid's, the buffer
        may hold what the enclosing one has left (nothing is left to a suppressed block's NullIO)."""
        _, enclosing_count, enclosing_limit = self.buffer
        out, count, limit = self.temp(), self.temp(), None
        self.emit(indent, f"{out} = []")
        self.emit(indent, f"{count} = 0")
        if enclosing_limit is not None:
            limit = self.temp()
            left = (
                self.env.output_stream_limit
                if suppressed
                else f"{self.env.output_stream_limit} - {enclosing_count}"
            )
            self.emit(indent, f"{limit} = {left}")
        saved, self.buffer = self.buffer, (f"{out}.append", count, limit)
        self.child_block(node.block, indent, suppressed=False, depth=depth)
        self.buffer = saved
        text = self.temp()
        joined = f'"".join({out})'
        self.emit(indent, f"{text} = _Markup({joined})" if self.autoescape else f"{text} = {joined}")
        self.assign(node.name, text, indent)

    def loop(self, node: ForNode, indent: int, *, suppressed: bool, depth: int) -> None:
        expression = node.expression
        if (
            expression.limit is not None
            or expression.offset is not None
            or expression.reversed
            or expression.cols is not None
            or depth >= _MAX_LOOP_DEPTH
        ):
            raise _Unsupported("loop modifiers or deep nesting")
        iterable = self.expression(expression.iterable, indent)
        items, length, item = self.temp(), self.temp(), self.temp()
        product = f"p{depth + 1}"
        to_iter = self.constant(expression._to_iter)
        self.emit(indent, f"{items}, {length} = {to_iter}({iterable}, _probe)")
        self.emit(indent, f"if {length}:")
        body = indent + 1
        # python-liquid's limit is on the product of the lengths of the loops running.
        self.emit(body, f"{product} = {f'p{depth}' if depth else '1'} * {length}")
        limit = self.env.loop_iteration_limit
        if limit:
            self.emit(body, f"if {product} > {int(limit)}: raise _Fallback")
        forloop = None
        if self.uses_forloop:
            forloop = self.temp()
            outer = [drop for _, _, drop in self.loops if drop is not None]
            parent = outer[-1] if outer else '_undefined("parentloop", token=None)'
            name = self.constant(f"{expression.identifier}-{expression.iterable}")
            self.emit(
                body, f"{forloop} = _ForLoop(name={name}, it={items}, length={length}, parentloop={parent})"
            )
        self.emit(body, f"for {item} in {forloop or items}:")
        self.loops.append((str(expression.identifier), item, forloop))
        self.child_block(node.block, body + 1, suppressed=suppressed, depth=depth + 1)
        self.loops.pop()
        if node.default is not None:
            self.emit(indent, "else:")
            self.child_block(node.default, indent + 1, suppressed=suppressed, depth=depth)

    # -- expressions -----------------------------------------------------------------------------

    def boolean(self, expression: Any, indent: int) -> str:
        """Emit the statements evaluating a condition; return the variable holding its truth."""
        if type(expression) is BooleanExpression:
            expression = expression.expression
        kind = type(expression)
        result = self.temp()
        if kind is LogicalAndExpression or kind is LogicalOrExpression:
            self.emit(indent, f"{result} = {self.boolean(expression.left, indent)}")
            self.emit(indent, f"if {'' if kind is LogicalAndExpression else 'not '}{result}:")
            self.emit(indent + 1, f"{result} = {self.boolean(expression.right, indent + 1)}")
        elif kind is LogicalNotExpression:
            self.emit(indent, f"{result} = not {self.boolean(expression.right, indent)}")
        else:
            self.emit(indent, f"{result} = _is_truthy({self.expression(expression, indent)})")
        return result

    def expression(self, expression: Any, indent: int) -> str:
        """Emit the statements evaluating `expression`; return a Python expression of its value."""
        kind = type(expression)
        if kind is Path:
            return self.path(expression, indent)
        if kind is StringLiteral:
            value = expression.value
            return self.constant(Markup(value) if self.autoescape else value)
        if kind in (IntegerLiteral, FloatLiteral, TrueLiteral, FalseLiteral):
            return self.constant(expression.value)
        if kind is Nil:
            return "None"
        if kind is Empty or kind is Blank:
            return self.constant(expression)
        if kind is FilteredExpression:
            value = self.temp()
            self.emit(indent, f"{value} = {self.expression(expression.left, indent)}")
            for filter_ in expression.filters or []:
                self.filter(filter_, value, indent)
            return value
        if kind in _COMPARISONS:
            left = self.expression(expression.left, indent)
            right = self.expression(expression.right, indent)
            token = self.constant(expression.token)
            return _COMPARISONS[kind].format(left=left, right=right, token=token)
        if kind in (BooleanExpression, LogicalAndExpression, LogicalOrExpression, LogicalNotExpression):
            return self.boolean(expression, indent)
        raise _Unsupported(kind.__name__)

    def filter(self, filter_: Filter, value: str, indent: int) -> None:
        function = self.env.filters.get(filter_.name)
        if function is None or getattr(function, "with_context", False):
            raise _Unsupported(f"filter {filter_.name}")
        if getattr(function, "with_environment", False):
            function = partial(function, environment=self.env)
        arguments: list[str] = []
        for argument in filter_.args:
            if type(argument) is PositionalArgument:
                arguments.append(self.expression(argument.value, indent))
            elif type(argument) is KeywordArgument and _is_name(argument.name):
                arguments.append(f"{argument.name}={self.expression(argument.value, indent)}")
            else:
                raise _Unsupported("filter argument")
        call = ", ".join([value, *arguments])
        self.emit(indent, f"{value} = {self.constant(function)}({call})")

    def path(self, path: Path, indent: int) -> str:
        root, *segments = path.path
        if not isinstance(root, str):
            raise _Unsupported("path root")
        root = str(root)
        keys: list[str] = []
        fast = True  # every key a name, none of size/first/last
        for segment in segments:
            if isinstance(segment, Path):
                keys.append(self.path(segment, indent))
                fast = False
            elif isinstance(segment, str):
                keys.append(repr(str(segment)))
                fast = fast and segment not in _SPECIAL_KEYS
            elif type(segment) is int:
                keys.append(repr(segment))
                fast = False
            else:
                raise _Unsupported("path segment")
        value = self.temp()
        local = self.loop_value(root)
        if local is not None:
            self.emit(indent, f"{value} = {local}")
        else:
            # The template's locals, then the render variables; a name missing from both is undefined, and
            # so is every path under it.
            if root in self.assigned:
                self.emit(indent, f"{value} = L.get({root!r}, _MISSING)")
                self.emit(indent, f"if {value} is _MISSING:")
                self.emit(indent + 1, f"{value} = G.get({root!r}, _MISSING)")
            else:
                self.emit(indent, f"{value} = G.get({root!r}, _MISSING)")
            self.emit(indent, f"if {value} is _MISSING:")
            if root in _BUILTIN_NAMES:
                self.emit(indent + 1, "raise _Fallback")
            else:
                hint, token = self.constant(f"{root!r} is undefined"), self.constant(path.token)
                self.emit(indent + 1, f"{value} = _undefined({root!r}, hint={hint}, token={token})")
            if keys:
                self.emit(indent, "else:")
                indent += 1
        if not keys:
            return value
        # A dict at every step (parsed JSON, the usual case) reads as python-liquid's getter reads it;
        # anything else (lists, drops, size/first/last, a missing key) takes its path resolution.
        steps, step = [], value
        for key in keys if fast else []:
            following = self.temp()
            steps.append(f"type({step}) is dict and {key} in {step}")
            steps.append(f"(({following} := {step}[{key}]) or True)")
            step = following
        walk = f"_walk({value}, ({', '.join(keys)},), {self.constant(path)})"
        if steps:
            self.emit(indent, f"{value} = {step} if {' and '.join(steps)} else {walk}")
        else:
            self.emit(indent, f"{value} = {walk}")
        return value

    def loop_value(self, root: str) -> str | None:
        """The Python expression of a name the loops around (or the render's `partial`) define, as
        python-liquid's scope chain resolves it: loop namespaces innermost first, each holding the
        loop variable over its `forloop`."""
        for identifier, item, forloop in reversed(self.loops):
            if root == identifier:
                return item
            if root == "forloop":
                if forloop is None:
                    raise _Unsupported("forloop without a loop drop")
                return forloop
        return "False" if root == "partial" else None


_COMPARISONS: dict[type, str] = {
    EqExpression: "_eq({left}, {right})",
    NeExpression: "(not _eq({left}, {right}))",
    LeExpression: "_le({left}, {right})",
    GeExpression: "_le({right}, {left})",
    LtExpression: "_lt({token}, {left}, {right})",
    GtExpression: "_lt({token}, {right}, {left})",
    ContainsExpression: "_contains({token}, {left}, {right})",
}


def _assigned_names(nodes: list[Node]) -> frozenset[str]:
    """The names `assign` and `capture` tags set anywhere among `nodes` and the blocks inside them."""
    names: set[str] = set()
    for node in nodes:
        if type(node) in (AssignNode, CaptureNode):
            names.add(str(node.name))  # type: ignore[attr-defined]
        blocks = [getattr(node, attribute, None) for attribute in ("block", "consequence", "default")]
        blocks += [alternative.block for alternative in getattr(node, "alternatives", None) or []]
        for block in blocks:
            if isinstance(block, BlockNode):
                names |= _assigned_names(block.nodes)
    return frozenset(names)


def _locals_size(local_values: Mapping[str, object]) -> int:
    # python-liquid's measure of a render's locals (RenderContext.get_size_of_locals).
    return sum(sys.getsizeof(value, 1) for value in local_values.values())


def _is_name(text: str) -> bool:
    """Whether `text` can stand in the generated code as a keyword argument's name."""
    return text.isidentifier() and not keyword.iskeyword(text)


def _make_walk(probe: RenderContext) -> Callable[[object, tuple[object, ...], Path], object]:
    get_item, undefined = probe.get_item, probe.env.undefined

    def walk(obj: object, keys: tuple[object, ...], path: Path) -> object:
        """RenderContext.get after the root: each key through the item getter, an undefined (with the
        interpreter's hint) at the first that fails."""
        root = str(path.path[0])
        for index, key in enumerate(keys):
            try:
                obj = get_item(obj, key)
            except (KeyError, TypeError):
                hint = f"{_segments_str([root, *keys[: index + 1]])} is undefined"
                return undefined(root, hint=hint, token=path.token)
            except IndexError:
                return undefined(root, hint="index out of range", token=path.token)
        return obj

    return walk

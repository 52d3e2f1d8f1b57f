"""The README agrees with the code: its configuration reference lists exactly the variables feedgate
reads, every curl of it calls a route the app serves (and the embed quick start, run curl by curl
against the demo's data, answers what the README shows), every address it sends a browser to is
served, and its two fresh-machine commands are the ones CI runs.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.routing import BaseRoute, Match
from starlette.testclient import TestClient

import gateway.cli as cli_module
import gateway.settings as settings_module
from gateway import operator
from gateway.app import create_app
from gateway.cli import build_parser
from gateway.sample_parent import SampleParent, sample_parent_routes
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CI_RUN = ROOT / ".ci" / "run"
CI_SETUP = ROOT / ".ci" / "setup"
QUICK_START = "Embed quick start"
CONFIGURATION = "Configuration reference"
FRESH_MACHINE = "Two commands for a fresh machine"
# The demo's address in the README, on both host names it uses.
DEMO_ORIGINS = ("http://127.0.0.1:3000", "http://localhost:3000")
_CODE_BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
_VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]*)`")
_URL = re.compile(r"https?://[^\s\"'`<>)]+")


# -- reading the README ------------------------------------------------------------------------------


def read_section(title: str) -> str:
    """The text under the `## ` heading that starts with `title`, up to the next `## ` heading."""
    match = re.search(
        rf"^## {re.escape(title)}.*?$(?P<body>.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL
    )
    assert match is not None, f"the README has no '## {title}' section"
    return match["body"]


def read_code_blocks(text: str, lang: str | None = None) -> list[str]:
    return [m["body"] for m in _CODE_BLOCK.finditer(text) if lang is None or m["lang"] == lang]


def read_documented_variables() -> list[str]:
    """The names in the first column of the configuration reference's tables, in order."""
    names: list[str] = []
    for line in read_section(CONFIGURATION).splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names += _VARIABLE.findall(cells[1])
    return names


@dataclass(frozen=True)
class Curl:
    method: str
    url: str
    headers: dict[str, str]
    data: str | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


def join_continuations(block: str) -> list[str]:
    """Shell lines with backslash-newline continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def parse_curl(line: str, variables: dict[str, str] | None = None) -> Curl:
    """One `curl` command: its method (`-X`, else POST with `-d`, else GET), URL, headers and body,
    with `$NAME` shell variables replaced by `variables` first (as the shell would)."""
    for name, value in sorted((variables or {}).items(), key=lambda item: -len(item[0])):
        line = line.replace(f"${name}", value)
    words = shlex.split(line, comments=True)
    assert words[0] == "curl", line
    method, url, data, headers = None, None, None, {}
    position = 1
    while position < len(words):
        word = words[position]
        if word in ("-X", "--request"):
            method = words[position + 1]
            position += 1
        elif word in ("-H", "--header"):
            name, _, value = words[position + 1].partition(":")
            headers[name.strip()] = value.strip()
            position += 1
        elif word in ("-d", "--data", "--data-raw"):
            data = words[position + 1]
            position += 1
        elif not word.startswith("-"):
            url = word
        position += 1
    assert url is not None, f"no URL in {line}"
    return Curl(method or ("POST" if data is not None else "GET"), url, headers, data)


def read_curls(text: str) -> list[str]:
    return [
        line.strip()
        for block in read_code_blocks(text, "sh")
        for line in join_continuations(block)
        if line.strip().startswith("curl ")
    ]


# -- reading the code --------------------------------------------------------------------------------


def read_variables_in_code() -> set[str]:
    """Every string literal passed to an `env.read_*` call in gateway/settings.py, and every
    `os.environ.get` name in gateway/cli.py (HOST and PORT, where `serve` and `demo` listen)."""
    return {
        *_first_string_arguments(settings_module.__file__, lambda call: call.func.attr.startswith("read_")),
        *_first_string_arguments(
            cli_module.__file__,
            lambda call: call.func.attr == "get" and ast.unparse(call.func.value) == "os.environ",
        ),
    }


def _first_string_arguments(path: str | None, wanted: Callable[[AttributeCall], bool]) -> set[str]:
    """The first argument, when a string literal, of every `x.name(...)` call in the file that
    `wanted` accepts."""
    assert path is not None
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and wanted(AttributeCall(node)):
            names.add(first.value)
    return names


class AttributeCall:
    """A call whose callee is an attribute (`env.read_str(...)`), typed for the filters above."""

    def __init__(self, call: ast.Call) -> None:
        assert isinstance(call.func, ast.Attribute)
        self.func: ast.Attribute = call.func


def is_routed(routes: list[BaseRoute], method: str, path: str) -> bool:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


@pytest.fixture
def demo_routes(settings: Settings) -> list[BaseRoute]:
    """The demo's routes: the app's (mounts included) and the sample parent page."""
    sample = sample_parent_routes(SampleParent(parent_id="p", child_id="c", admin_key="k"))
    return list(create_app(settings, run_worker=False, extra_routes=sample).routes)


# -- the configuration reference ---------------------------------------------------------------------


def test_the_code_reads_some_variables_and_the_reference_lists_some() -> None:
    assert {"AUTH_MODE", "SECRET_KEY", "FEEDGATE_METRICS", "HOST"} <= read_variables_in_code()
    assert len(read_documented_variables()) > 40


def test_every_variable_the_code_reads_is_in_the_configuration_reference() -> None:
    assert read_variables_in_code() - set(read_documented_variables()) == set()


def test_every_variable_in_the_configuration_reference_is_read_by_the_code() -> None:
    assert set(read_documented_variables()) - read_variables_in_code() == set()


def test_each_variable_has_one_row() -> None:
    names = read_documented_variables()
    assert sorted({name for name in names if names.count(name) > 1}) == []


# -- curls and addresses -----------------------------------------------------------------------------


def test_every_curl_calls_a_route_the_app_serves(demo_routes: list[BaseRoute]) -> None:
    curls = [parse_curl(line) for line in read_curls(README)]

    assert len(curls) >= 9
    assert {curl.path for curl in curls} >= {
        "/api-l/admin/workspaces/child",
        "/api-l/sessions",
        "/api-l/admin/embed-settings",
        "/api-l/admin/theme",
        "/api/admin/component-configurations/",
    }
    assert [f"{c.method} {c.path}" for c in curls if not is_routed(demo_routes, c.method, c.path)] == []


def read_opened_paths() -> set[str]:
    """The paths of the demo addresses the README sends a browser to: not curl targets, nor the
    program output it quotes in `text` blocks."""
    prose = _CODE_BLOCK.sub(lambda block: "" if block["lang"] == "text" else block[0], README)
    text = "\n".join(line for line in join_continuations(prose) if not line.strip().startswith("curl "))
    urls = [url.rstrip(".,;:") for url in _URL.findall(text)]
    return {urlsplit(url).path for url in urls if url.startswith(DEMO_ORIGINS) and urlsplit(url).path}


def test_every_address_the_readme_opens_on_the_demo_is_served(demo_routes: list[BaseRoute]) -> None:
    paths = read_opened_paths()

    assert {
        "/documentation",
        "/documentation/json",
        "/sample-parent/",
        "/dashboard-l/embedded/broadcasts",
    } <= paths
    assert sorted(path for path in paths if not is_routed(demo_routes, "GET", path)) == []


# -- the embed quick start, run ----------------------------------------------------------------------


@pytest.fixture
def demo_client(settings: Settings) -> Iterator[tuple[TestClient, operator.CreatedWorkspace]]:
    """The demo's data (parent, "Acme Bakery" child, sample events) behind a test client."""
    created = operator.seed_demo(settings)
    assert created is not None
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield client, created


def quick_start_steps() -> list[tuple[str, list[dict[str, Any]]]]:
    """Each curl of the quick start with the answers the README shows for it (the JSON block that
    follows its code block, one document a line), or [] when none is shown."""
    blocks = list(_CODE_BLOCK.finditer(read_section(QUICK_START)))
    steps: list[tuple[str, list[dict[str, Any]]]] = []
    for index, block in enumerate(blocks):
        if block["lang"] != "sh":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        answers = (
            [json.loads(line) for line in following["body"].splitlines() if line.strip()]
            if following is not None and following["lang"] == "json"
            else []
        )
        curls = [line for line in join_continuations(block["body"]) if line.strip().startswith("curl ")]
        for position, line in enumerate(curls):
            steps.append((line.strip(), answers[position : position + 1]))
    return steps


def shape(value: Any) -> Any:
    """A JSON value's structure: object keys (recursively) and value types, not the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def test_the_quick_start_runs_against_the_demo_and_answers_what_the_readme_shows(
    demo_client: tuple[TestClient, operator.CreatedWorkspace],
) -> None:
    client, parent = demo_client
    variables = {"PARENT_ID": parent.workspace_id, "PARENT_KEY": parent.admin_api_key}
    steps = quick_start_steps()
    assert len(steps) >= 8

    for line, shown in steps:
        curl = parse_curl(line, variables)
        target = urlsplit(curl.url)
        response = client.request(
            curl.method,
            target.path + (f"?{target.query}" if target.query else ""),
            headers=curl.headers,
            content=curl.data,
        )
        assert response.status_code < 300, f"{line}\n-> {response.status_code} {response.text}"
        if curl.path == "/api-l/admin/workspaces/child":
            variables["CHILD_ID"] = response.json()["id"]
        if curl.path == "/api-l/sessions" and curl.method == "POST":
            variables["TOKEN"] = response.json()["token"]
        if shown:
            assert shape(response.json()) == shape(shown[0]), line
    assert {"CHILD_ID", "TOKEN"} <= variables.keys()


# -- the fresh-machine commands ----------------------------------------------------------------------


def read_script_commands(path: Path) -> list[str]:
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def test_the_two_fresh_machine_commands_are_the_ones_ci_uses() -> None:
    demo_command, test_command = [
        block.strip() for block in read_code_blocks(read_section(FRESH_MACHINE), "sh")
    ]
    ci_run = read_script_commands(CI_RUN)
    ci_setup = read_script_commands(CI_SETUP)

    # The test command is .ci/run's setup and suite, without the lint steps.
    setup, suite = test_command.split(" && ")
    assert setup in ci_run
    assert suite in ci_run
    # The demo command makes the venv exactly as .ci/setup does, then runs a real subcommand.
    make_venv, install, run = demo_command.split(" && ")
    assert any(make_venv in line for line in ci_setup)
    assert install == ".venv/bin/pip install -e ."
    program, *arguments = run.split()
    assert program == ".venv/bin/feedgate"
    assert build_parser().parse_args(arguments).command == "demo"


def test_the_lint_steps_the_readme_names_are_in_ci() -> None:
    ci_run = read_script_commands(CI_RUN)
    for step in ("ruff check .", "ruff format --check .", "mypy"):
        assert f".venv/bin/{step}" in ci_run

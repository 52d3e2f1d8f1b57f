"""The README's embed quick start, done the way a newcomer does it: `feedgate demo` as a real process in
an empty directory, every shell block of the quick start run by bash with real curl, the values the
reader is told to keep taken from what the demo and the API printed, the page of step 8 served by
`python3 -m http.server` on another site, and the broadcast editor opened from it in Chromium.

Only the ports change (the demo's 3000 and the page's 8000 are taken by other tests). The walk stops
at the editor, before the blocks that end sessions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium, screenshot_path
from tests.support.net import free_port
from tests.support.processes import feedgate_env, running_feedgate, wait_for
from tests.test_readme import QUICK_START, join_continuations, read_code_blocks, read_section

DEMO_PRINTS = {
    "PARENT_ID": re.compile(r"seeded parent workspace (\S+)"),
    "PARENT_KEY": re.compile(r"admin API key \(shown once\): (\S+)"),
}
# What each `export` of the quick start keeps: from the demo's first lines, or from the answer of the
# command just before it.
KEPT_FROM_ANSWER = {"CHILD_ID": "id", "TOKEN": "token"}
PAGE_SERVER = "python3 -m http.server"


def read_answers(output: str) -> list[dict[str, Any]]:
    """The JSON documents curl printed one after another (curl adds no newline between them)."""
    decoder = json.JSONDecoder()
    answers, position = [], 0
    while (start := output.find("{", position)) != -1:
        answer, position = decoder.raw_decode(output, start)
        answers.append(answer)
    return answers


def quick_start_blocks(demo_port: int, page_port: int) -> list[list[str]]:
    """The quick start's shell blocks up to the one that serves the page, ports swapped, each as
    its logical lines (continuations joined, heredocs kept whole)."""
    blocks = []
    for block in read_code_blocks(read_section(QUICK_START), "sh"):
        text = (
            block.replace("127.0.0.1:3000", f"127.0.0.1:{demo_port}")
            .replace("localhost:8000", f"localhost:{page_port}")
            .replace(f"{PAGE_SERVER} 8000", f"{PAGE_SERVER} {page_port}")
        )
        blocks.append(text.splitlines() if "<<EOF" in text else join_continuations(text))
        if PAGE_SERVER in text:
            return blocks
    raise AssertionError(f"the quick start never serves its page with {PAGE_SERVER}")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """`feedgate demo` in an empty directory; what it printed on first start, read as the reader does."""
    port = free_port()
    env = feedgate_env(tmp_path)
    del env["FEEDGATE_DATA_DIR"]  # the README's command: data in ./.feedgate
    with running_feedgate(["demo", "--port", str(port)], env, cwd=tmp_path) as process:
        assert process.stdout is not None
        kept: dict[str, str] = {}
        printed: list[str] = []
        while len(kept) < len(DEMO_PRINTS) and (line := process.stdout.readline()):
            printed.append(line)
            for name, pattern in DEMO_PRINTS.items():
                if found := pattern.search(line):
                    kept[name] = found[1]
        assert kept.keys() == DEMO_PRINTS.keys(), "".join(printed)
        # The access log goes on: keep reading it so the pipe never fills.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        wait_for(f"http://127.0.0.1:{port}/api/", process)
        yield port, kept


def test_a_newcomer_reaches_the_embedded_broadcast_editor_by_following_the_readme(
    demo: tuple[int, dict[str, str]], tmp_path: Path
) -> None:
    demo_port, kept = demo
    page_port = free_port()
    variables = dict(kept)
    answers: list[dict[str, Any]] = []
    page_server: subprocess.Popen[str] | None = None
    try:
        for lines in quick_start_blocks(demo_port, page_port):
            script = []
            for line in lines:
                if found := re.match(r"export (\w+)=", line):
                    name = found[1]
                    if name not in variables:
                        assert answers, f"{line}: nothing was answered before it"
                        variables[name] = answers[-1][KEPT_FROM_ANSWER[name]]
                elif line.startswith(PAGE_SERVER):
                    page_server = subprocess.Popen(
                        shlex.split(line), cwd=tmp_path, stderr=subprocess.DEVNULL, text=True
                    )
                else:
                    script.append(line)
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
                cwd=tmp_path,
                env={**os.environ, **variables},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert ran.returncode == 0, f"{script}\n{ran.stderr}"
            answers += read_answers(ran.stdout)
        assert page_server is not None
        assert {"CHILD_ID", "TOKEN"} <= variables.keys()
        wait_for(f"http://localhost:{page_port}/", page_server)

        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"http://localhost:{page_port}/")
            screen = page.frame_locator("iframe")
            screen.locator("input[name=name]").first.fill("Spring sale")
            screen.get_by_role("button", name="Create broadcast").click()

            start = screen.get_by_role("button", name="Start")
            start.wait_for()
            editor = next(frame for frame in page.frames if frame is not page.main_frame)
            assert editor.url.startswith(f"http://127.0.0.1:{demo_port}/dashboard-l/embedded/broadcasts/v2?")
            assert "token=" not in editor.url
            assert "Pro plan" in screen.get_by_test_id("segment-select").locator("option").all_inner_texts()
            # The theme of step 4 colours the editor.
            assert start.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(123, 31, 162)"
            page.screenshot(path=screenshot_path("quick-start-broadcast-editor"))

            screen.get_by_test_id("step-content").click()
            templates = screen.get_by_test_id("template-select")
            templates.wait_for()
            assert "Spring sale" in templates.locator("option").all_inner_texts()
    finally:
        if page_server is not None:
            page_server.terminate()
            page_server.wait(timeout=10)

"""engine/ is a plain library: it imports no web code and nothing from the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"starlette", "jinja2", "authlib", "uvicorn", "gateway", "components"}
ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_imports_no_web_code() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_modules(path) & FORBIDDEN)
        for path in (ROOT / "engine").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_would_catch_an_offender(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from starlette.requests import Request\nimport jinja2.sandbox\n")
    assert _imported_modules(module) & FORBIDDEN == {"starlette", "jinja2"}

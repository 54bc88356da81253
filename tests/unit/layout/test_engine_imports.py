"""The line between the engine and the projects built on it: the engine imports no project.

Reads every module of the engine's packages (and the modules they share) with ``ast`` and fails
on any import of the demo or of the demo's local tooling, however it is spelled (``import``,
``from … import``, a function-level import, ``importlib.import_module("…")`` with a literal).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streams

ROOT = Path(streams.__file__).parent
ENGINE = ["cdc", "codecs", "registry", "connect", "sinks", "pipeline", "stack", "project", "verify"]
SHARED = ["app.py", "settings.py", "errors.py", "secrets.py"]
DEMO = ("streams.demo", "streams.load")


def _modules() -> list[Path]:
    files = [p for pkg in ENGINE for p in sorted((ROOT / pkg).rglob("*.py"))]
    return files + [ROOT / name for name in SHARED if (ROOT / name).exists()]


def imported_names(source: str) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def _demo(name: str) -> bool:
    return any(name == d or name.startswith(d + ".") for d in DEMO)


def test_the_check_sees_every_spelling() -> None:
    src = (
        "import streams.demo.run\nfrom streams.demo.project import x\n"
        "def f():\n    from streams.load import y\n"
        "importlib.import_module('streams.demo.services.migrate')\nfrom streams import demo\n"
    )
    assert sorted(n for n in imported_names(src) if _demo(n)) == [
        "streams.demo",
        "streams.demo.project",
        "streams.demo.project.x",
        "streams.demo.run",
        "streams.demo.services.migrate",
        "streams.load",
        "streams.load.y",
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_module_imports_no_project(path: Path) -> None:
    bad = [n for n in imported_names(path.read_text(encoding="utf-8")) if _demo(n)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the engine must not know the demo"


def test_engine_modules_are_found() -> None:
    assert len(_modules()) > 80  # a moved package must not silently empty the check

"""The package layout: no import cycle among xstilts' modules (function-level imports count), no module over
700 lines, and every test module in exactly one tier (tests/conftest.py's TIERS)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import xstilts
from conftest import TIERS

PACKAGE = Path(xstilts.__file__).parent
TESTS = Path(__file__).parent
MAX_LINES = 700


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth of its code (function-level imports count).

    ``from .x import y`` reaches ``x.y`` where that is a module, else ``x``; importing ``a.b.c`` also runs the
    ``__init__`` of ``a.b``, an edge unless the importer lies inside ``a.b`` (its own package is already being
    imported while it runs, so that is no cycle)."""
    mods = modules(root)
    top = root.name
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name == top or a.name.startswith(top + ".")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = ".".join(base[: len(base) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                elif node.module and (node.module == top or node.module.startswith(top + ".")):
                    base = node.module
                else:
                    continue
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in mods else base)
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                reached = ".".join(parts[:i])
                own_package = name == reached or name.startswith(reached + ".")
                if reached in mods and reached != name and not own_package:
                    graph[name].add(reached)
            if target in mods and target != name:
                graph[name].add(target)  # a module of the importer's own package: a real edge
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_cycle_detector_finds_a_cycle_through_a_function_level_import(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .sub.c import g\n    return g\n",
        "sub/__init__.py": "from .c import g\n",
        "sub/c.py": "def g():\n    from ..a import b\n",
    })
    cycle = find_cycle(import_graph(root))
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"}


def test_the_cycle_detector_passes_a_dag(tmp_path):
    """Siblings importing each other's package, ``from . import x``, a package ``__init__`` re-exporting its
    submodules and a submodule importing its own package: no cycle."""
    root = _package(tmp_path, {
        "__init__.py": "from .top import run\n",
        "top.py": "from . import sub\nfrom .sub import helper\n\ndef run():\n    from .low import x\n",
        "sub/__init__.py": "from .helper import h\nfrom .other import o\n",
        "sub/helper.py": "from . import other\nfrom .. import low\n\ndef h():\n    import pkg.low\n",
        "sub/other.py": "from ..low import x\n",
        "low.py": "import os\nx = 1\n",
    })
    graph = import_graph(root)
    assert find_cycle(graph) is None
    assert graph["pkg.sub.helper"] == {"pkg.sub.other", "pkg.low"}
    assert graph["pkg.top"] == {"pkg.sub", "pkg.sub.helper", "pkg.low"}
    # a module reached through another package's __init__ counts that __init__: here it closes a cycle
    (root / "low.py").write_text("def f():\n    from .sub.other import o\n")
    assert find_cycle(import_graph(root)) == ["pkg.low", "pkg.sub", "pkg.sub.helper", "pkg.low"]


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_over_700_lines():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules(PACKAGE).items()}
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_every_test_module_has_exactly_one_tier():
    listed = [m for ms in TIERS.values() for m in ms]
    assert len(listed) == len(set(listed)), "a module is listed under two tiers"
    assert sorted(p.stem for p in TESTS.glob("test_*.py")) == sorted(listed)
    pyproject = (TESTS.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert set(re.findall(r'^\s*"(\w+): ', pyproject, re.M)) == set(TIERS)  # registered markers

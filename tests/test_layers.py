"""No files import each other in a loop: read from the code itself with
``ast`` (imports inside functions count too). The order of the layers
themselves is an import-linter contract (pyproject.toml, ``lint-imports``
in ``make test``)."""

import ast
from collections import defaultdict

from conftest import ROOT

# Every package of the application.
LAYERS = ["core", "segmentation", "training", "synthetic", "detector", "measurement", "evaluation", "inference",
          "loop", "gui"]


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = {module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def test_no_files_import_each_other_in_a_loop():
    graph = imports()
    loops = set()

    def visit(node, path, on_path):
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                cycle = path[path.index(nxt):]
                turn = cycle.index(min(cycle))
                loops.add(" -> ".join(cycle[turn:] + cycle[:turn] + [min(cycle)]))
            elif nxt not in done:
                visit(nxt, path + [nxt], on_path | {nxt})
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start})
    assert not loops, "files that import each other in a loop:\n" + "\n".join(sorted(loops))


def test_every_package_says_what_it_offers_and_importing_it_loads_neither_qt_nor_tensorflow():
    import subprocess
    import sys

    code = """
import importlib, sys
packages = {packages!r}
for name in packages:
    package = importlib.import_module(name)
    assert package.__doc__, name
    for public in package.__all__:
        getattr(package, public)
heavy = [m for m in ("tensorflow", "keras", "PyQt5") if m in sys.modules]
assert not heavy, heavy
print(sum(len(importlib.import_module(n).__all__) for n in packages))
"""
    packages = [p for p in LAYERS if p not in ("core", "gui")]
    done = subprocess.run([sys.executable, "-c", code.format(packages=packages)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 60

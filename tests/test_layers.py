"""The packages stand on one another in one order, and no files import each
other in a loop: read from the code itself with ``ast`` (imports inside
functions count too)."""

import ast
from collections import defaultdict

from conftest import ROOT

# From the ground up: a package may import only those below it.
LAYERS = ["core", "segmentation", "synthetic", "training", "evaluation", "loop", "gui"]


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


def test_no_package_imports_one_above_it():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = sorted(f"{a} -> {b}" for a, targets in imports().items() for b in targets
                    if rank[b.split(".")[0]] > rank[a.split(".")[0]])
    assert upward == [], "imports that run up the layers " + " < ".join(LAYERS) + ":\n" + "\n".join(upward)


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

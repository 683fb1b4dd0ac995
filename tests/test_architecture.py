"""The import graph: apps form one-way layers and no module imports itself back through others.

Every import counts, including ones inside functions: a lazy import is still a dependency, it only
hides a loop from Python. Run `python -m tests.test_architecture` to print the app-level graph that
the README's architecture section shows.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lower layers never import higher ones; apps on one layer do not import each other.
LAYERS = [
    ["core"],
    ["accounts", "audit"],
    ["generation"],
    ["rating"],
    ["judging"],
    ["results"],
    ["study_data"],
    ["api"],
    ["demo", "mhsd_platform"],
]
LAYER_OF = {app: depth for depth, apps in enumerate(LAYERS) for app in apps}
# Migrations are frozen history, not part of the live graph.
SKIPPED_PARTS = {"migrations"}
# Allowed exceptions, each with its reason. accounts records audit events of user management, and
# audit's models point at the user model by settings.AUTH_USER_MODEL, never by import.
ALLOWED_SAME_LAYER = {("accounts", "audit")}


def project_modules() -> dict[str, Path]:
    modules = {}
    for app in LAYER_OF:
        base = ROOT / app
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            if SKIPPED_PARTS & set(rel.parts):
                continue
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports anywhere in its file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            # `from pkg import sub` imports the submodule when there is one.
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def module_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {module: imports_of(module, path, known) for module, path in modules.items()}


def app_of(module: str) -> str:
    return module.split(".")[0]


def app_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    apps = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            if app_of(target) != app_of(module):
                apps[app_of(module)].add(app_of(target))
    return apps


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
    return result


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        source = app_of(module)
        for target in sorted(targets):
            dest = app_of(target)
            if dest == source or (source, dest) in ALLOWED_SAME_LAYER:
                continue
            if LAYER_OF[dest] >= LAYER_OF[source]:
                problems.append(f"{module} imports {target}: {source} may not depend on {dest}")
    return problems


def test_every_app_of_the_project_has_a_layer():
    from django.apps import apps

    ours = {config.name.split(".")[0] for config in apps.get_app_configs()
            if (ROOT / config.name.split(".")[0]).is_dir()}
    assert ours <= set(LAYER_OF), f"apps missing from LAYERS: {sorted(ours - set(LAYER_OF))}"


def test_apps_only_import_lower_layers():
    assert layer_violations(module_graph()) == []


def test_no_module_imports_itself_back():
    assert cycles(module_graph()) == []


def test_the_checker_sees_a_loop_and_a_layer_breach():
    # The checks above pass vacuously if the checker is blind: feed it a known bad graph.
    graph = {"rating.services": {"results.services"}, "results.services": {"rating.services"}}
    assert cycles(graph) == [["rating.services", "results.services"]]
    assert layer_violations(graph) == [
        "rating.services imports results.services: rating may not depend on results"
    ]


def test_imports_inside_functions_count(tmp_path):
    path = tmp_path / "services.py"
    path.write_text("def f():\n    from results.services import x\n")
    known = {"rating.services", "results.services"}
    assert imports_of("rating.services", path, known) == {"results.services"}


if __name__ == "__main__":
    graph = app_graph(module_graph())
    for depth, apps in enumerate(LAYERS):
        for app in apps:
            targets = sorted(graph.get(app, ()), key=lambda a: (LAYER_OF[a], a))
            print(f"{depth} {app:<14} -> {', '.join(targets) or '(nothing)'}")
    sys.exit(1 if layer_violations(module_graph()) or cycles(module_graph()) else 0)

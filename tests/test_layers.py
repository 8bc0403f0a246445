"""The architecture of DESIGN.md, enforced: lower layers never import upper ones, and no
module imports another in a circle (an import inside a function counts as well: it is
no way around either rule).

    admin / commands / contrib / mailing  (and the app's wiring: apps, checks)
      -> verification (one-time codes: a user of the services)
      -> services -> tasks -> delivery
      -> models, ratelimit, conf, clients, signals, taskcompat, privacy
      -> client -> backends -> pure modules
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "django_smsfly"

#: (layer, module prefixes), lowest first; a module may import its own layer and below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "pure",
        (
            "channels",
            "statuses",
            "segments",
            "exceptions",
            "results",
            "validation",
            "pricing",
        ),
    ),
    ("backends", ("backends",)),
    ("client", ("client",)),
    (
        "records",
        (
            "conf",
            "privacy",
            "clients",
            "models",
            "ratelimit",
            "signals",
            "taskcompat",
            "quiet",
            "templating",
        ),
    ),
    ("delivery", ("delivery",)),
    ("tasks", ("tasks",)),
    ("services", ("services",)),
    ("verification", ("verification",)),
]
TOP = len(LAYERS)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer of an app module (``""`` is the package's lazy façade: the top)."""
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return index
    return TOP


MODULES = {
    module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts
}


def imports_of(module: str) -> set[str]:
    """The app modules ``module`` imports, anywhere in its code."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
                base = f"django_smsfly.{base}" if base else "django_smsfly"
            # "from package import submodule" imports the submodule; "from module
            # import name" imports the module.
            names = [
                f"{base}.{alias.name}"
                if f"{base}.{alias.name}".removeprefix("django_smsfly.") in MODULES
                else base
                for alias in node.names
            ]
        for name in names:
            if not name.startswith("django_smsfly"):
                continue
            inner = name.removeprefix("django_smsfly").lstrip(".")
            # "from x import name": keep the longest prefix that is a module of ours.
            while inner and inner not in MODULES:
                inner = inner.rpartition(".")[0]
            # The package itself is a lazy façade (``from django_smsfly import
            # __version__`` imports nothing else): it is no edge of the graph.
            if inner and inner != module:
                found.add(inner)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_layers_cover_every_module_that_exists() -> None:
    for _layer, prefixes in LAYERS:
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in MODULES), prefix


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    upward = sorted(target for target in GRAPH[module] if layer_of(target) > layer_of(module))
    assert upward == [], f"{module} imports {upward} from a layer above its own"


def test_no_modules_import_each_other_in_a_circle() -> None:
    cycles = [sorted(c) for c in strongly_connected(GRAPH) if len(c) > 1]
    assert cycles == []


def test_the_checker_finds_an_upward_import_and_a_cycle() -> None:
    """The rules above can fail: a made-up graph with both faults is caught."""
    graph = {"delivery.x": {"services"}, "services": {"delivery.x"}}
    assert [sorted(c) for c in strongly_connected(graph) if len(c) > 1] == [
        ["delivery.x", "services"]
    ]
    assert layer_of("services") > layer_of("delivery.x")


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of an import graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, set()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components

"""The package's floors: no module imports a floor above its own, and no modules import each other in a circle.

The import graph comes from `grimp`, which reads every ``import`` statement, including the ones
inside functions (a lazy import is still a dependency). Imports under ``if TYPE_CHECKING:`` never
run, so the circle check leaves them out; the floor check keeps them (a type names a floor too).
See docs/contributing.md for the map these rules come from.
"""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")

PACKAGE = "orca_math"

#: (importer, imported): the lower floor never reaches the upper one, not even through other modules.
FORBIDDEN = [
    # records are the ground floor: typed data, known to everyone, knowing no one.
    *[("records", upper) for upper in ("models", "engine", "agents", "pipeline", "learn", "evaluate", "recipes", "cli")],
    # models build clients; the engine runs calls over them.
    *[("models", upper) for upper in ("engine", "agents", "pipeline", "learn", "evaluate", "recipes", "cli")],
    # the engine never knows the agents or the pipeline it runs.
    *[("engine", upper) for upper in ("agents", "pipeline", "learn", "evaluate", "recipes", "cli")],
    # agents never know the pipeline that composes them.
    *[("agents", upper) for upper in ("pipeline", "learn", "evaluate", "recipes", "cli")],
    # trainer adapters and the learning loop never import the generation code.
    ("learn", "pipeline"),
    ("learn", "recipes"),
    ("learn", "cli"),
    ("evaluate", "pipeline"),
    ("evaluate", "cli"),
    ("pipeline", "recipes"),
    ("pipeline", "cli"),
    ("recipes", "cli"),
]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(PACKAGE, include_external_packages=False, cache_dir=None)


@pytest.fixture(scope="module")
def runtime_graph():
    return grimp.build_graph(PACKAGE, include_external_packages=False, cache_dir=None, exclude_type_checking_imports=True)


@pytest.mark.parametrize(("lower", "upper"), FORBIDDEN, ids=[f"{a}-not-{b}" for a, b in FORBIDDEN])
def test_a_floor_never_imports_one_above(graph, lower, upper):
    importer, imported = f"{PACKAGE}.{lower}", f"{PACKAGE}.{upper}"
    chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    assert chain is None, f"{importer} reaches {imported}: " + " -> ".join(chain)


def test_only_the_command_line_imports_the_command_line(graph):
    outside = {module for module in graph.find_downstream_modules(f"{PACKAGE}.cli", as_package=True)
               if module != f"{PACKAGE}.__main__"}
    assert outside == set()


def import_circles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, without recursion)."""
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges[target])))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1:
                        circles.append(sorted(group))
    return circles


def test_no_import_circle_in_the_package(runtime_graph):
    circles = import_circles(runtime_graph)
    assert circles == [], "modules that import each other: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle():
    """The check above can fail: two modules that import each other are one circle; a chain is none."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    assert import_circles(graph) == []
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert import_circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]

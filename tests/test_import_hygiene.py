"""The headless core never imports Textual, and nothing heavy loads on `import studio`."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "transformers", "textual")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module",
    ["studio", "studio.recipe", "studio.engine", "studio.models", "studio.store.session", "studio.formats.png",
     "studio.config", "studio.cli", "studio.service", "studio.formats.importer"],
)
def test_headless_modules_stay_light(module):
    assert not loaded_after(f"import {module}") & set(HEAVY)


def test_cli_parser_stays_light():
    assert not loaded_after("from studio.cli import build_parser; build_parser()") & {"torch", "diffusers"}


# -- the shape of the house: no cycles, no import that runs upward ----------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

STUDIO = Path(__file__).resolve().parent.parent / "studio"
FACES = ("studio.cli", "studio.tui", "studio.__main__")  # `python -m studio` is the CLI too


def _module_name(path: Path) -> str:
    parts = path.relative_to(STUDIO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST):
    """Every import that can run, at module level or inside a function; not `if TYPE_CHECKING:` ones."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """studio module -> the studio modules it imports (a `from pkg import mod` names the module)."""
    modules = {_module_name(p): p for p in STUDIO.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                assert node.level == 0, f"{path}: relative import"
                base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != "studio" and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_studio():
    assert cycles(import_graph()) == []


def test_the_core_never_imports_a_face():
    upward = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not module.startswith(FACES)
        for target in targets
        if target.startswith(FACES)
    ]
    assert upward == []


def test_no_file_in_studio_is_over_500_lines():
    long = [f"{p.relative_to(STUDIO.parent)}: {n}" for p in STUDIO.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500]
    assert long == []

"""The shape of the house (DESIGN.md), checked on the source: no import circle in rlvr/, a leaf
config, pure algorithms with short signatures, and a training loop read in one sitting."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rlvr"


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The rlvr modules ``path`` imports anywhere (functions included), except under
    ``if TYPE_CHECKING``."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    return {name for name in found if name in MODULES and name != _module_name(path)}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a path that ends where it starts), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_rlvr():
    graph = {name: _imports(path) for name, path in MODULES.items()}
    assert _cycle(graph) is None


def test_config_is_a_leaf():
    assert _imports(MODULES["rlvr.config"]) == set()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("rlvr.algorithms")))
def test_algorithms_are_pure_with_short_signatures(name):
    tree = ast.parse(MODULES[name].read_text())
    banned = ("rlvr.rollout", "rlvr.learner", "torch.distributed")
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m.startswith(banned)]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            args = node.args
            count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
            assert count <= 8, f"{name}.{node.name} takes {count} parameters"


def test_the_training_loop_reads_in_one_sitting():
    tree = ast.parse(MODULES["rlvr.train"].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"rlvr/train.py {node.name} is {length} lines"
    assert "rlvr.train" not in _imports(MODULES["rlvr.evaluate"])

"""The package's layers: imports point downwards, from the ways in to the services to core."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trends_gql"
# Each layer may import itself and the layers after it in this list, never one before it.
LAYERS = [
    {"cli", "processes"},
    {"web", "schema"},
    {"accounts", "trends", "imports", "exports", "cache"},
    {"core"},
]


def layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:` (annotations only, never imported)."""
    skipped = {
        id(n)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and ast.unparse(branch.test) == "TYPE_CHECKING"
        for n in ast.walk(branch)
    }
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def imported_parts(path: Path) -> set[str]:
    """The first names below trends_gql of what a module imports when it runs."""
    parts = set()
    for node in _run_time_nodes(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "trends_gql" and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_import_only_their_own_layer_and_those_below(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    wrong = {p for p in imported_parts(path) if p in {*set().union(*LAYERS)}}
    wrong = {p for p in wrong if layer_of(p) < layer_of(own)}
    assert not wrong, f"{relative} imports from a layer above it: {sorted(wrong)}"


def test_every_module_belongs_to_a_layer() -> None:
    known = set().union(*LAYERS)
    for path in MODULES:
        relative = path.relative_to(PACKAGE)
        assert (relative.parts[0] if len(relative.parts) > 1 else relative.stem) in known

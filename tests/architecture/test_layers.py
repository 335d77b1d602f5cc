"""The house's floors (docs/architecture.md): imports run one way, down.

Every `hypolab` module's imports are read from its source (ast, no import needed), each
module is placed on its floor, and an import of a module on a higher floor, or of a
sibling room on the same floor, fails the test with the offending line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"

# Floor of each room (the first path part under services/); a room imports only from
# rooms on lower floors and from itself.
FLOORS: dict[str, int] = {
    # ground floor: shared wire formats, paths, chat messages; then spec loading
    "contracts": 0, "paths": 0, "chat": 0, "endpoints": 0, "__init__": 0,
    "specs": 1,
    # the pure roles
    "verdicts": 2, "audit": 2, "stack": 2,
    # the roles that run things
    "trainer": 3, "coordinator": 3,
    # commands composing the roles
    "audits": 4, "demo": 4, "cli": 5, "__main__": 6,
}


def room(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "hypolab", module
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(SERVICES).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["hypolab", *parts])


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every hypolab import in the file, lazy ones included."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("hypolab"):
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
                out.extend((node.lineno, n) for n in names)
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names if a.name.startswith("hypolab"))
    return out


FILES = sorted(SERVICES.rglob("*.py"))


def test_every_room_has_a_floor():
    rooms = {room(module_name(p)) for p in FILES}
    assert rooms <= set(FLOORS), f"rooms without a floor in this test and docs/architecture.md: {rooms - set(FLOORS)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SERVICES)))
def test_imports_run_down(path: Path):
    here = room(module_name(path))
    bad = []
    for line, target in imports_of(path):
        there = room(target)
        if there == here or there not in FLOORS:
            continue
        if FLOORS[there] >= FLOORS[here]:
            bad.append(f"{path.relative_to(SERVICES)}:{line} imports {target} "
                       f"(floor {FLOORS[there]}) from floor {FLOORS[here]}")
    assert not bad, "\n".join(bad)

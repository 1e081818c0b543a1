"""The import rules of docs/architecture.md, checked on the source (AST, no imports executed).

- the layers: a package imports only from its own layer or below (``LAYERS``);
- nothing outside ``cli/`` imports ``pathwaygrad.cli``;
- a subpackage's private module (``pathwaygrad.<pkg>._x``) is imported only from inside ``<pkg>``;
- the graph of top-level packages has no cycle (any import, also inside a function);
- exactly one ``class MethodSpec`` exists.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pathwaygrad"

# Lowest layer first. A unit is a top-level module or subpackage of pathwaygrad.
LAYERS: dict[str, int] = {
    # 0: library-wide utilities
    "errors": 0,
    "_io": 0,
    "_devices": 0,
    "_threads": 0,
    # 1: the core: find activation calls -> score -> select -> pathway -> attribute
    "_guard": 1,
    "_inputs": 1,
    "sites": 1,
    "masking": 1,
    "probe": 1,
    "methods": 1,
    "thresholds": 1,
    "selection": 1,
    "pathway": 1,
    "attribution": 1,
    # 2: vocabulary, models, data, training, run folders
    "specs": 2,
    "models": 2,
    "data": 2,
    "training": 2,
    "runs": 2,
    "viz": 2,
    # 3: what users run: explaining images, analysis, evaluation, presets
    "explainee": 3,
    "analysis": 3,
    "evaluation": 3,
    "presets": 3,
    # 4: the paper's experiments end to end
    "reproduce": 4,
    # 5: the command line (argument parsing only)
    "cli": 5,
}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute names of every ``pathwaygrad`` module imported by ``path`` (with line numbers)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("pathwaygrad")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("pathwaygrad"):
                continue
            out.append((mod, node.lineno))
            # ``from pathwaygrad.pkg import _private`` imports a module too
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names if a.name.startswith("_")]
    return out


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in _modules()} - {None}
    missing = sorted(units - set(LAYERS))
    assert not missing, f"give these modules a layer in LAYERS and docs/architecture.md: {missing}"


def test_layers_point_down():
    bad = []
    for path in _modules():
        src = _unit(_module_name(path))
        if src is None:  # pathwaygrad/__init__.py re-exports lazily from every layer
            continue
        for target, line in _imports(path):
            dst = _unit(target)
            if dst is None or dst not in LAYERS or src not in LAYERS:
                continue
            if LAYERS[dst] > LAYERS[src]:
                bad.append(
                    f"{path.relative_to(SRC)}:{line} {src} (layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})"
                )
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_nothing_outside_cli_imports_cli():
    bad = [
        f"{p.relative_to(SRC)}:{line} imports {t}"
        for p in _modules()
        if _unit(_module_name(p)) != "cli"
        for t, line in _imports(p)
        if t == "pathwaygrad.cli" or t.startswith("pathwaygrad.cli.")
    ]
    assert not bad, "\n".join(bad)


def test_no_private_module_of_another_package():
    """``pathwaygrad.<unit>._x`` (a private module or name) is used only inside ``<unit>``.

    The top-level private modules (``_io``, ``_devices``, ...) are library-wide utilities: their
    public names may be imported anywhere.
    """
    bad = []
    for p in _modules():
        here = _unit(_module_name(p))
        for t, line in _imports(p):
            parts = t.split(".")
            private = [i for i in range(2, len(parts)) if parts[i].startswith("_")]
            if private and here != parts[1]:
                bad.append(f"{p.relative_to(SRC)}:{line} imports {t}")
    assert not bad, "private modules or names used from outside their package:\n" + "\n".join(bad)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for p in _modules():
        src = _unit(_module_name(p))
        if src is None:
            continue
        for t, _ in _imports(p):
            dst = _unit(t)
            if dst is not None and dst != src:
                graph.setdefault(src, set()).add(dst)

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_exactly_one_method_spec():
    found = [
        f"{p.relative_to(SRC)}:{n.lineno}"
        for p in _modules()
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.ClassDef) and n.name == "MethodSpec"
    ]
    assert len(found) == 1, f"one MethodSpec, found {found}"


@pytest.mark.parametrize(
    "pattern", ["weights_only=False", "_C._dispatch", "torch.library", "register_fake"]
)
def test_no_unsafe_load_or_patch(pattern):
    hits = [str(p.relative_to(SRC)) for p in _modules() if pattern in p.read_text()]
    assert not hits, f"{pattern!r} in {hits}"

"""How pathwaygrad installs and imports: light `import pathwaygrad`, public names, dependency
ranges against the pinned versions, one version string, a consistent torch/torchvision pair."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import pathwaygrad

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Optional or heavy packages that no part of the core (sites -> methods -> selection -> pathway)
# needs: `import pathwaygrad` and selecting a pathway must not load them. Captum (and through
# captum.attr, matplotlib) loads with the attribution step, torchvision/timm with named models.
NOT_FOR_THE_CORE = (
    "captum",
    "matplotlib",
    "torchvision",
    "timm",
    "ray",
    "quantus",
    "scipy",
    "skimage",
    "sklearn",
    "pandas",
    "cv2",
)


def _modules_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_import_pathwaygrad_loads_no_dependency():
    loaded = _modules_after("import pathwaygrad")
    assert not loaded & {*NOT_FOR_THE_CORE, "torch", "numpy"}


def test_selecting_a_pathway_loads_only_the_core():
    loaded = _modules_after(
        "import torch, pathwaygrad as pg\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))\n"
        "pathway = pg.select_pathway(model, torch.randn(2, 4), target=0, sparsity=50.0)\n"
        "assert isinstance(pathway, pg.Pathway)"
    )
    assert "torch" in loaded and "pathwaygrad" in loaded
    assert not loaded & set(NOT_FOR_THE_CORE)


def test_every_public_name_resolves():
    exports = pathwaygrad._EXPORTS
    assert set(pathwaygrad.__all__) == {*exports, "__version__"}
    for name in pathwaygrad.__all__:
        assert getattr(pathwaygrad, name) is not None, name
        assert name in dir(pathwaygrad)
    for name, module in exports.items():  # each name is the object its module defines
        target = importlib.import_module(module)
        expected = target if name in pathwaygrad._MODULES else getattr(target, name)
        assert getattr(pathwaygrad, name) is expected
    from pathwaygrad import select_pathway

    assert select_pathway is pathwaygrad.selection.select_pathway
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        pathwaygrad.not_a_name  # noqa: B018


def test_version_is_written_once_in_pyproject():
    assert pathwaygrad.__version__ == PYPROJECT["project"]["version"]
    assert pathwaygrad.__version__ == importlib.metadata.version("pathwaygrad")
    init = (ROOT / "src" / "pathwaygrad" / "__init__.py").read_text()
    assert PYPROJECT["project"]["version"] not in init


def _requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions only: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_dependencies_are_ranges_that_admit_the_pinned_versions():
    pins = _pins()
    for req in _requirements():
        if canonicalize_name(req.name) == "pathwaygrad":  # `test` pulls in the other extras
            continue
        assert not any(s.operator in ("==", "===") for s in req.specifier), (
            f"pyproject pins {req}: exact versions belong in constraints.txt"
        )
        pinned = pins.get(canonicalize_name(req.name))
        assert pinned is not None, f"constraints.txt pins no version of {req.name}"
        assert req.specifier.contains(pinned, prereleases=True), (
            f"{req} excludes the tested {req.name}=={pinned}"
        )
    assert re.match(r"2\.14\.1\b", pins["torch"]) and re.match(r"0\.29\.1\b", pins["torchvision"])


def test_torchvision_and_timm_import_beside_torch():
    """The installed torchvision is the build made for the installed torch (no patching)."""
    missing = [name for name in ("torchvision", "timm") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: the tests need the 'vision' extra "
            "(`make setup`, or `pip install -c constraints.txt -e '.[test]'`)"
        )
    code = (
        "import torch, torchvision, timm\n"
        "boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.9]])\n"
        "keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5)\n"
        "assert keep.tolist() == [0], keep\n"
        "print(torch.__version__, torchvision.__version__, timm.__version__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]

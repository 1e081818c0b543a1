"""pathwaygrad: neural response interpretation through critical pathways.

Khakzar et al., *Neural Response Interpretation through the Lens of Critical Pathways*, CVPR 2021.

The pipeline, one module (or folder) per step:

1. :mod:`pathwaygrad.sites` finds every activation *call* of a model;
2. :mod:`pathwaygrad.methods` scores the neurons (NeuronMCT, NeuronIntGrad, ...);
3. :mod:`pathwaygrad.selection` selects the critical pathway (global threshold by default);
4. :mod:`pathwaygrad.attribution` computes the pathway gradient (and the baselines);
5. :mod:`pathwaygrad.evaluation` and :mod:`pathwaygrad.analysis` evaluate them.

``import pathwaygrad`` is cheap: every public name below is imported from its module on first
use (PEP 562), so Captum, matplotlib, torchvision, timm, Quantus and Ray load only when a
function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it (or, for the names in _MODULES, the module itself).
_EXPORTS: dict[str, str] = {
    "ACTIVATION_KINDS": "pathwaygrad.sites",
    "BASELINE_METHODS": "pathwaygrad.attribution.baselines",
    "Explainee": "pathwaygrad.explainee",
    "Explanation": "pathwaygrad.explainee",
    "METHODS": "pathwaygrad.specs",
    "MethodSpec": "pathwaygrad.specs",
    "PATHWAY_METHODS": "pathwaygrad.methods",
    "NeuronScores": "pathwaygrad.selection",
    "Pathway": "pathwaygrad.pathway",
    "PathwayGradient": "pathwaygrad.attribution.pathway_gradient",
    "ResolvedActivations": "pathwaygrad.sites",
    "Site": "pathwaygrad.sites",
    "activation_sites": "pathwaygrad.sites",
    "errors": "pathwaygrad.errors",
    "explain": "pathwaygrad.attribution.explain",
    "explain_files": "pathwaygrad.explainee",
    "load_explainee": "pathwaygrad.explainee",
    "load_vision_model": "pathwaygrad.models.vision",
    "pathway_gradient": "pathwaygrad.attribution.pathway_gradient",
    "pathway_logits": "pathwaygrad.selection",
    "parse_methods": "pathwaygrad.specs",
    "reduce_channels": "pathwaygrad.viz",
    "resolve_activations": "pathwaygrad.sites",
    "score_neurons": "pathwaygrad.selection",
    "select_pathway": "pathwaygrad.selection",
    "select_pathways": "pathwaygrad.selection",
}
_MODULES = frozenset({"errors"})

__all__ = [  # the names of _EXPORTS and the version (tests/test_packaging.py checks they agree)
    "ACTIVATION_KINDS",
    "BASELINE_METHODS",
    "Explainee",
    "Explanation",
    "METHODS",
    "MethodSpec",
    "PATHWAY_METHODS",
    "NeuronScores",
    "Pathway",
    "PathwayGradient",
    "ResolvedActivations",
    "Site",
    "activation_sites",
    "errors",
    "explain",
    "explain_files",
    "load_explainee",
    "load_vision_model",
    "pathway_gradient",
    "pathway_logits",
    "parse_methods",
    "reduce_channels",
    "resolve_activations",
    "score_neurons",
    "select_pathway",
    "select_pathways",
    "__version__",
]

if TYPE_CHECKING:  # what type checkers and editors see; nothing of this runs at import
    from pathwaygrad import errors
    from pathwaygrad.attribution.baselines import BASELINE_METHODS
    from pathwaygrad.attribution.explain import explain
    from pathwaygrad.attribution.pathway_gradient import PathwayGradient, pathway_gradient
    from pathwaygrad.explainee import Explainee, Explanation, explain_files, load_explainee
    from pathwaygrad.methods import PATHWAY_METHODS
    from pathwaygrad.models.vision import load_vision_model
    from pathwaygrad.pathway import Pathway
    from pathwaygrad.selection import (
        NeuronScores,
        pathway_logits,
        score_neurons,
        select_pathway,
        select_pathways,
    )
    from pathwaygrad.sites import (
        ACTIVATION_KINDS,
        ResolvedActivations,
        Site,
        activation_sites,
        resolve_activations,
    )
    from pathwaygrad.specs import METHODS, MethodSpec, parse_methods
    from pathwaygrad.viz import reduce_channels

    __version__: str


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        value = module if name in _MODULES else getattr(module, name)
    else:
        raise AttributeError(f"module 'pathwaygrad' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    """The installed distribution's version: written once, in pyproject.toml."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pathwaygrad")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"

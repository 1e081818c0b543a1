"""Evaluation protocols for saliency maps, one module per protocol.

Each protocol module exposes ``PROTOCOL`` (a :class:`~pathwaygrad.evaluation._meta.ProtocolInfo`:
what it needs and the direction of its scores) and functions that return a
:class:`~pathwaygrad.evaluation._results.ResultTable` (a list of row dicts, one row per
method x setting x repeat, with ``.summary`` and ``.meta``).

- :mod:`~pathwaygrad.evaluation.roar`: ROAR / KAR (remove / keep the top pixels, retrain).
- :mod:`~pathwaygrad.evaluation.perturbation`: LeRF / MoRF relative drop, deletion / insertion.
- :mod:`~pathwaygrad.evaluation.road`: ROAD; its noisy linear imputation (batched) is
  :mod:`~pathwaygrad.evaluation.imputation`.
- :mod:`~pathwaygrad.evaluation.runner`: ``run_protocol``, what ``pathwaygrad evaluate`` does.
- :mod:`~pathwaygrad.evaluation.sanity`: cascading / independent model randomisation.
- :mod:`~pathwaygrad.evaluation.quantus_adapter`: ``explain_func`` for Quantus metrics.
- :mod:`~pathwaygrad.evaluation.plots`: PNG figures of the results.

Methods are named in the grammar of :mod:`pathwaygrad.specs` (``"neuron_mct:sparsity=70"``,
``"gradient"``, ``"random_ranking"``) or given as callables ``explain(model, inputs, targets)``;
see :mod:`._methods`. Executors (where ROAR / KAR cells run): :mod:`._executor` and
:mod:`.ray_executor`.
"""

from __future__ import annotations

import importlib

from pathwaygrad._io import write_json
from pathwaygrad.evaluation._executor import (
    Executor,
    Job,
    LocalProcessExecutor,
    SequentialExecutor,
    make_executor,
)
from pathwaygrad.evaluation._methods import DEFAULT_SPARSITY, resolve_methods
from pathwaygrad.evaluation._results import ResultTable, read_csv, write_csv

# Functions re-exported lazily (their modules import scipy / scikit-image). ``roar.roar`` and
# ``road.road`` share their module's name, so they are reached through the module:
# ``from pathwaygrad.evaluation.roar import roar``.
_LAZY = {
    "pixel_perturbation": "perturbation",
    "deletion_insertion": "perturbation",
    "noisy_linear_impute": "imputation",
    "run_protocol": "runner",
    "EvaluationSettings": "runner",
    "remove_and_retrain": "roar",
    "kar": "roar",
    "sanity_check": "sanity",
    "quantus_explain_func": "quantus_adapter",
    "plot_results": "plots",
}

__all__ = [
    "DEFAULT_SPARSITY",
    "Executor",
    "Job",
    "LocalProcessExecutor",
    "ResultTable",
    "SequentialExecutor",
    "make_executor",
    "read_csv",
    "resolve_methods",
    "write_csv",
    "write_json",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"pathwaygrad.evaluation.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'pathwaygrad.evaluation' has no attribute {name!r}")

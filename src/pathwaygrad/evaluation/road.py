"""ROAD: RemOve And Debias (Rong, Leemann et al., ICML 2022), the protocol.

The imputation (noisy linear, batched, three solvers: each removed pixel takes the weighted mean of
its neighbours, plus Gaussian noise, as in the ROAD paper and Quantus) is :mod:`.imputation`, which
describes it; this module ranks the pixels, removes and imputes them level by level and scores the
model.

Protocol (:func:`road`): for MoRF remove the top t % pixels, for LeRF the bottom t %, impute, and
report the accuracy of the model (and the mean probability of the target class) on the imputed
images. MoRF: lower accuracy is better; LeRF: higher is better. Imputation happens in the space the
model receives (normalised inputs), as in Quantus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._meta import HIGHER, LOWER, ProtocolInfo
from pathwaygrad.evaluation._methods import resolve_methods
from pathwaygrad.evaluation._results import ResultTable
from pathwaygrad.evaluation.imputation import NEIGHBOUR_WEIGHTS, make_generator, noisy_linear_impute
from pathwaygrad.evaluation.perturbation import (
    _check_fractions,
    _check_inputs,
    _targets,
    method_curves,
    trapezoid,
)

__all__ = [
    "DEFAULT_FRACTIONS",
    "NEIGHBOUR_WEIGHTS",
    "PROTOCOL",
    "noisy_linear_impute",
    "road",
]

PROTOCOL = ProtocolInfo(
    name="road",
    summary="Remove the top / bottom t % pixels, impute them (noisy linear), model accuracy.",
    needs=("model", "inputs (N, C, H, W)", "labels (N,) (or predicted classes)", "methods"),
    scores={"accuracy (morf)": LOWER, "accuracy (lerf)": HIGHER},
    reference="Rong, Leemann, Nguyen, Fiedler, Seitzer, Kasneci, ICML 2022",
)

DEFAULT_FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 10))


def road(
    model,
    inputs: torch.Tensor,
    methods,
    *,
    labels=None,
    orders: Sequence[str] = ("morf", "lerf"),
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    noise: float = 0.01,
    targets=None,
    rank_by: str = "max",
    batch_size: int = 64,
    max_forward: int | None = None,
    solver: str = "auto",
    seed: int = 0,
    progress: bool = True,
    activations: str | Sequence[str] | None = None,
) -> ResultTable:
    """ROAD with MoRF and LeRF orders.

    ``inputs`` (N, C, H, W) as the model expects them; ``labels`` (N,): the true classes for the
    accuracy (None: the model's predictions on the clean inputs, so accuracy starts at 1);
    ``targets``: the class each map explains (None: the predicted class); ``fractions``: removal
    levels in [0, 1); ``noise``: imputation noise std; ``seed``: noise, tie-breaking and the random
    ranking.

    Rows (one per method x order x fraction): ``method``, ``order``, ``fraction``, ``accuracy``,
    ``prob`` (mean probability of the target class), ``n``. ``summary[method][order]``:
    ``area`` (trapezoid of accuracy over the fractions given) and ``mean_accuracy``.
    """
    x = _check_inputs(inputs)
    for order in orders:
        if order not in ("morf", "lerf"):
            raise UserError(f"orders must be 'morf' and/or 'lerf', got {order!r}")
    fr = _check_fractions(fractions)
    if max(fr) >= 1.0:
        raise UserError(
            "ROAD fractions must be < 1: with every pixel removed nothing can be imputed"
        )
    specs = resolve_methods(methods)
    t, _ = _targets(model, x, targets, batch_size)
    y = t if labels is None else torch.as_tensor(labels).long().reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise UserError(f"labels has {y.shape[0]} entries for {x.shape[0]} inputs")
    if solver == "auto":
        solver = "banded"

    def impute_fill(xs, masks, image_index, level_index):
        # a fresh seeded generator per call: the noise depends on (seed, batch), not on history
        g = make_generator(
            seed * 1_000_003 + int(image_index[0]) * 101 + int(level_index[0]), xs.device
        )
        return noisy_linear_impute(xs, masks, noise, generator=g, solver=solver)

    rows: list[dict] = []
    summary: dict = {}
    for spec, order, res in method_curves(
        model,
        x,
        t,
        specs,
        [(o, o) for o in orders],
        fr,
        impute_fill,
        rank_by=rank_by,
        batch_size=batch_size,
        max_forward=max_forward,
        seed=seed,
        progress=progress,
        activations=activations,
        prefix="road ",
    ):
        acc = (res["pred"] == y.unsqueeze(1)).float()
        for i, f in enumerate(fr):
            rows.append(
                {
                    "method": spec.label,
                    "order": order,
                    "fraction": f,
                    "accuracy": float(acc[:, i].mean()),
                    "prob": float(res["prob"][:, i].mean()),
                    "n": int(x.shape[0]),
                }
            )
        curve = acc.mean(0).tolist()
        summary.setdefault(spec.label, {})[order] = {
            "area": trapezoid(curve, fr),
            "mean_accuracy": float(np.mean(curve)),
        }
    meta = {
        **PROTOCOL.to_dict(),
        "settings": {
            "orders": list(orders),
            "fractions": fr,
            "noise": noise,
            "solver": solver,
            "labels": "given" if labels is not None else "predicted class of the clean input",
            "targets": "predicted class" if targets is None else "given",
            "rank_by": rank_by,
            "seed": seed,
            "n_images": int(x.shape[0]),
        },
        "methods": [s.describe() for s in specs],
    }
    return ResultTable(rows, summary, meta)

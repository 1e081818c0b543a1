"""Step 2 of the pipeline: score neurons (or select them directly), one module per method.

=================  =====================  =================================================
name               paper's name           what it computes
=================  =====================  =================================================
``neuron_mct``     NeuronMCT              |a * dy/da| (first-order Taylor), one pass
``neuron_intgrad`` NeuronIntGrad          per-call integrated gradients, uniform alpha grid
``greedy``         Greedy (pathological)  iterative Taylor pruning that keeps zero scores
``random``         Random                 a random p % of each call pruned
``dgr``            DGR / CDRP             learned gates (pruning objective)
``dead``           dead path              neurons whose activation is <= 0 (analysis only)
=================  =====================  =================================================
"""

from __future__ import annotations

from pathwaygrad._inputs import check_int, check_number
from pathwaygrad.errors import UserError

PATHWAY_METHODS = ("neuron_mct", "neuron_intgrad", "greedy", "random", "dgr", "dead")

# The paper's name of every method, pathway or baseline (figures, tables, reports).
PAPER_NAMES = {
    "neuron_mct": "NeuronMCT",
    "neuron_intgrad": "NeuronIntGrad",
    "greedy": "Greedy",
    "random": "Random",
    "dgr": "DGR",
    "dgr_ones": "DGR(init=1)",
    "dgr_random": "DGR(init=r)",
    "dead": "Dead path",
    "gradient": "Gradient",
    "input_x_gradient": "Input x Gradient",
    "integrated_gradients": "Integrated Gradients",
    "guided_backprop": "Guided Backprop",
    "grad_cam": "Grad-CAM",
    "smoothgrad": "SmoothGrad",
}

# Greedy's percentile schedules (see pathwaygrad.methods.greedy).
GREEDY_SCHEDULES = ("inclusive", "paper_figures")

# Options each method accepts (besides sparsity / threshold / activations).
METHOD_OPTIONS = {
    "neuron_mct": (),
    "neuron_intgrad": ("steps", "internal_batch_size", "progress"),
    "greedy": ("step", "schedule"),
    "random": ("seed",),
    "dgr": ("init", "lam", "lr", "momentum", "iterations", "seed", "max_restarts", "progress"),
    "dead": (),
}


def check_values(method: str, options: dict) -> None:
    """Refuse option values a method cannot run with (one-line UserError), before any work."""
    get = options.get
    if method == "neuron_intgrad":
        check_int(method, "steps", get("steps", 10), 1)
        check_int(method, "internal_batch_size", get("internal_batch_size"), 1, none_ok=True)
    elif method == "greedy":
        check_number(method, "step", get("step", 1.0), 0.0, above=True)
        if get("schedule", "inclusive") not in GREEDY_SCHEDULES:
            raise UserError(
                "greedy: schedule must be 'inclusive' (percentiles 0..s, default) or "
                f"'paper_figures' (0..s - step), got {get('schedule')!r}"
            )
    elif method == "random":
        check_int(method, "seed", get("seed", 0))
    elif method == "dgr":
        if get("init", "ones") not in ("ones", "random"):
            raise UserError(f"dgr: init must be 'ones' or 'random', got {get('init')!r}")
        check_number(method, "lam", get("lam", 0.01), 0.0)
        check_number(method, "lr", get("lr", 0.01), 0.0, above=True)
        check_number(method, "momentum", get("momentum", 0.9), 0.0)
        check_int(method, "iterations", get("iterations", 1000), 1)
        check_int(method, "seed", get("seed", 0))
        check_int(method, "max_restarts", get("max_restarts", 3), 0)

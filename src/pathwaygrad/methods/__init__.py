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

# Options each method accepts (besides sparsity / threshold / activations).
METHOD_OPTIONS = {
    "neuron_mct": (),
    "neuron_intgrad": ("steps", "internal_batch_size", "progress"),
    "greedy": ("step",),
    "random": ("seed",),
    "dgr": ("init", "lam", "lr", "momentum", "iterations", "seed", "max_restarts", "progress"),
    "dead": (),
}

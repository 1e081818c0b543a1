"""One entry point for every saliency method: pathway gradient and the baselines."""

from __future__ import annotations

import torch

from pathwaygrad.attribution.baselines import BASELINE_METHODS, baseline_attribution
from pathwaygrad.errors import UserError
from pathwaygrad.methods import PATHWAY_METHODS


def explain(
    model,
    inputs: torch.Tensor,
    method: str,
    /,
    target=None,
    additional_forward_args=None,
    **options,
) -> torch.Tensor:
    """Saliency map of ``method`` for ``inputs`` (B, C, H, W).

    ``method`` is a pathway method (``"neuron_mct"``, ``"neuron_intgrad"``, ``"greedy"``,
    ``"random"``, ``"dgr"``, ``"dead"``: pathway gradient through that method's pathway; options
    ``sparsity`` (percent pruned, default 90) and the method's options) or a baseline
    (``"gradient"``, ``"input_x_gradient"``, ``"integrated_gradients"``, ``"guided_backprop"``,
    ``"grad_cam"``, ``"smoothgrad"``). Returns a tensor shaped like ``inputs``; ``grad_cam``
    returns (B, 1, H, W). Maps are signed; nothing is normalised. ``model``, ``inputs`` and
    ``method`` are positional, so that an option may itself be called ``method`` (Integrated
    Gradients' integration rule).
    """
    if method in PATHWAY_METHODS:
        from pathwaygrad.attribution.pathway_gradient import pathway_gradient
        from pathwaygrad.selection import select_pathway

        options = dict(options)
        options.setdefault("sparsity", 90.0)
        pathway = select_pathway(
            model,
            inputs,
            target,
            method,
            additional_forward_args=additional_forward_args,
            **options,
        )
        return pathway_gradient(
            model, inputs, pathway, None, additional_forward_args=additional_forward_args
        )
    if method in BASELINE_METHODS:
        return baseline_attribution(
            method, model, inputs, target, additional_forward_args, **options
        )
    raise UserError(
        f"unknown method {method!r}; choose from {list(PATHWAY_METHODS) + list(BASELINE_METHODS)}"
    )

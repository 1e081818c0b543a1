"""Pathway gradient (paper section 2): the input gradient of the target logit through the
network restricted to a critical pathway (masks held fixed as constant gates).
"""

from __future__ import annotations

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage

from pathwaygrad._guard import preserved
from pathwaygrad._inputs import check_inputs, forward_args, resolve_targets, run_model
from pathwaygrad.errors import PathwayMismatchError
from pathwaygrad.pathway import Pathway
from pathwaygrad.probe import target_outputs
from pathwaygrad.sites import AUTO, ActivationRunner, Activations, MaskTransform


def pathway_gradient(
    model,
    inputs: torch.Tensor,
    pathway: Pathway,
    target=None,
    *,
    additional_forward_args=None,
) -> torch.Tensor:
    """Input gradient d y_target / d inputs of the network masked by ``pathway``.

    Args:
        model: the model the pathway was selected on.
        inputs: (B, ...) float tensor, the inputs the pathway was selected for.
        pathway: a :class:`~pathwaygrad.Pathway` with batch B.
        target: None (the pathway's targets, i.e. each example's predicted class when it was
            selected), an int, or one class per example.

    Returns:
        a tensor shaped like ``inputs`` (no absolute value taken).
    """
    inputs = check_inputs(inputs, model)
    if pathway.batch_size != inputs.shape[0]:
        raise PathwayMismatchError(
            f"the pathway holds {pathway.batch_size} example(s) but inputs hold {inputs.shape[0]}; "
            "select the pathway on these inputs"
        )
    extra = forward_args(additional_forward_args)
    runner = ActivationRunner(model, pathway.activations)
    masks = [m.to(inputs.device) for m in pathway.masks]
    with preserved(model), torch.enable_grad():
        x = inputs.detach().requires_grad_(True)
        logits, _, _ = run_model(runner, x, MaskTransform(masks), extra)
        targets = pathway.targets.to(inputs.device) if target is None else None
        targets = resolve_targets(target, logits) if targets is None else targets
        y = target_outputs(logits, targets).sum()
        (grad,) = torch.autograd.grad(y, x)
    return grad


class PathwayGradient(GradientAttribution):
    """Pathway gradient as a Captum attribution method.

    ``PathwayGradient(model, method="neuron_mct", sparsity=90.0).attribute(inputs, target)``
    selects each example's critical pathway with ``method`` and returns the gradient of the
    target logit through it, shaped like ``inputs``. Works with Captum's ``NoiseTunnel``
    (SmoothGrad over pathway gradient), ``infidelity``, ``sensitivity_max`` and visualisation.

    Args:
        forward_func: the model (``nn.Module`` or callable returning logits (B, K)).
        method, sparsity, activations, threshold, **options: as :func:`pathwaygrad.select_pathway`.
    """

    def __init__(
        self,
        forward_func,
        method: str = "neuron_mct",
        sparsity: float | str = 90.0,
        *,
        activations: Activations = AUTO,
        threshold: str | None = None,
        **options,
    ) -> None:
        super().__init__(forward_func)
        self.method = method
        self.sparsity = sparsity
        self.activations = activations
        self.threshold = threshold
        self.options = options
        self.last_pathway: Pathway | None = None

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    @log_usage()
    def attribute(self, inputs, target=None, additional_forward_args=None):
        """Pathway gradient of ``inputs`` (B, ...) for ``target``; a tensor shaped like inputs.

        The selected pathway stays available as ``self.last_pathway``.
        """
        from pathwaygrad.selection import select_pathway

        is_tuple = isinstance(inputs, tuple)
        if is_tuple:
            if len(inputs) != 1:
                raise ValueError("PathwayGradient takes a single input tensor")
            inputs = inputs[0]
        pathway = select_pathway(
            self.forward_func,
            inputs,
            target,
            self.method,
            self.sparsity,
            activations=self.activations,
            threshold=self.threshold,
            additional_forward_args=additional_forward_args,
            **self.options,
        )
        self.last_pathway = pathway
        attr = pathway_gradient(
            self.forward_func,
            inputs,
            pathway,
            None,
            additional_forward_args=additional_forward_args,
        )
        return (attr,) if is_tuple else attr

"""The saliency baselines the paper compares against, from Captum (not rewritten).

=========================  ==================  ===============================================
name                       paper's name        implementation
=========================  ==================  ===============================================
``gradient``               Gradient            ``captum.attr.Saliency(abs=False)`` (signed)
``input_x_gradient``       Input x Gradient    ``captum.attr.InputXGradient`` ("InputMCT")
``integrated_gradients``   Integrated Grad.    ``captum.attr.IntegratedGradients``, 50 steps,
                           ("InputIntGrad")    zero baseline in normalised space
``guided_backprop``        Guided Backprop     pathwaygrad's activation interception (below)
``grad_cam``               Grad-CAM            ``captum.attr.LayerGradCam``, bilinear upsampling,
                                               ``relu_attributions=True`` by default
``smoothgrad``             SmoothGrad          ``captum.attr.NoiseTunnel`` over signed gradient
=========================  ==================  ===============================================

Grad-CAM: by default the map is ReLU'd (``relu_attributions=True``, as TorchRay and the original
Grad-CAM do), unlike a plain Captum ``LayerGradCam(...).attribute(...)`` call, whose default keeps
negative values; ``relu_attributions=False`` gives exactly that plain Captum map (then upsampled the
same way).

Guided backprop: Captum's ``GuidedBackprop`` only changes ``nn.ReLU`` *modules*; on models with
functional ``F.relu`` (the CIFAR ResNets) it silently returns the plain gradient. Here the guided
rule (pass only positive gradients through each ReLU) is applied at every ReLU *call* found by
:mod:`pathwaygrad.sites`, so it is correct on any model; on ``nn.ReLU`` models it equals Captum's.
"""

from __future__ import annotations

import torch
from torch import nn

from pathwaygrad._guard import preserved
from pathwaygrad._inputs import (
    check_inputs,
    check_int,
    check_number,
    check_options,
    forward_args,
    resolve_targets,
    run_model,
)
from pathwaygrad.errors import UserError
from pathwaygrad.probe import target_outputs
from pathwaygrad.sites import ActivationRunner

BASELINE_METHODS = (
    "gradient",
    "input_x_gradient",
    "integrated_gradients",
    "guided_backprop",
    "grad_cam",
    "smoothgrad",
)

BASELINE_OPTIONS = {
    "gradient": (),
    "input_x_gradient": (),
    "integrated_gradients": ("n_steps", "internal_batch_size", "method"),
    "guided_backprop": (),
    "grad_cam": ("layer", "relu_attributions"),
    "smoothgrad": ("nt_samples", "stdevs", "seed", "nt_samples_batch_size"),
}


class _PositiveGrad(torch.autograd.Function):
    """Identity forward; backward passes only the positive part of the gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def guided_backprop(model, inputs, target=None, additional_forward_args=()) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015) at every ReLU call; shaped like inputs."""
    runner = ActivationRunner(model, ("relu",))
    with preserved(model), torch.enable_grad():
        x = inputs.detach().requires_grad_(True)
        logits, _, _ = run_model(
            runner, x, lambda i, k, out: _PositiveGrad.apply(out), additional_forward_args
        )
        targets = resolve_targets(target, logits)
        (grad,) = torch.autograd.grad(target_outputs(logits, targets).sum(), x)
    return grad


def default_cam_layer(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """The last module (in completion order) whose output is a 4-D map with more than 1 pixel.

    For torchvision's ResNet-50 that is ``layer4``, for VGG-16 ``features``, for the CIFAR
    ResNets ``layer3``: the layers the paper uses.
    """
    found: list[nn.Module] = []
    handles = []

    def hook(module, args, out):
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] * out.shape[3] > 1:
            found.append(module)

    for module in model.modules():
        if module is not model:
            handles.append(module.register_forward_hook(hook))
    try:
        with preserved(model), torch.no_grad():
            model(inputs[:1])
    finally:
        for h in handles:
            h.remove()
    if not found:
        raise UserError(
            "grad_cam needs a layer with a spatial 4-D output (B, C, H, W) and none was found; "
            "pass layer=... explicitly"
        )
    return found[-1]


def _resolve_layer(model, layer, inputs):
    if layer is None:
        return default_cam_layer(model, inputs)
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            raise UserError(f"grad_cam layer {layer!r} is not a submodule of the model") from None
    return layer


_IG_RULES = (
    "riemann_right",
    "riemann_left",
    "riemann_middle",
    "riemann_trapezoid",
    "gausslegendre",
)


def _check_values(method: str, options: dict) -> None:
    """Refuse option values a baseline cannot run with (one-line UserError), before any work."""
    get = options.get
    if method == "integrated_gradients":
        check_int(method, "n_steps", get("n_steps", 50), 1)
        check_int(method, "internal_batch_size", get("internal_batch_size"), 1, none_ok=True)
        if get("method", "gausslegendre") not in _IG_RULES:
            raise UserError(
                f"{method}: method must be one of {list(_IG_RULES)}, got {get('method')!r}"
            )
    elif method == "smoothgrad":
        check_int(method, "nt_samples", get("nt_samples", 25), 1)
        check_number(method, "stdevs", get("stdevs", 0.15), 0.0)
        check_int(method, "seed", get("seed", 0))
        check_int(method, "nt_samples_batch_size", get("nt_samples_batch_size"), 1, none_ok=True)
    elif method == "grad_cam" and not isinstance(get("relu_attributions", True), bool):
        raise UserError(
            f"grad_cam: relu_attributions must be True or False, got {get('relu_attributions')!r}"
        )


def baseline_attribution(
    method: str,
    model,
    inputs: torch.Tensor,
    /,
    target=None,
    additional_forward_args=None,
    **options,
) -> torch.Tensor:
    """Attribution of a baseline method; shaped like inputs (``grad_cam``: (B, 1, H, W)).

    Options: ``integrated_gradients``: ``n_steps`` (50), ``method`` ("gausslegendre"),
    ``internal_batch_size``; ``smoothgrad``: ``nt_samples`` (25), ``stdevs`` (0.15, times the
    inputs' range), ``seed``, ``nt_samples_batch_size``; ``grad_cam``: ``layer`` (default: the
    last module with a spatial 4-D output) and ``relu_attributions``: True (default: the map is
    ReLU'd, TorchRay-like) or False (exactly Captum's ``LayerGradCam`` default). Grad-CAM's map is
    upsampled bilinearly to the input size with ``LayerAttribution.interpolate``.
    """
    from captum.attr import (
        InputXGradient,
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Saliency,
    )

    if method not in BASELINE_METHODS:
        raise UserError(f"unknown baseline {method!r}; choose from {list(BASELINE_METHODS)}")
    check_options(method, options, BASELINE_OPTIONS[method])
    _check_values(method, options)
    inputs = check_inputs(inputs, model)
    extra = additional_forward_args
    with preserved(model), torch.no_grad():
        logits = model(inputs, *forward_args(extra))
    targets = resolve_targets(target, logits)
    x = inputs.detach().clone().requires_grad_(True)
    with preserved(model):
        if method == "gradient":
            return Saliency(model).attribute(
                x, target=targets, abs=False, additional_forward_args=extra
            )
        if method == "input_x_gradient":
            return InputXGradient(model).attribute(x, target=targets, additional_forward_args=extra)
        if method == "integrated_gradients":
            return IntegratedGradients(model).attribute(
                x,
                baselines=torch.zeros_like(x),
                target=targets,
                additional_forward_args=extra,
                n_steps=options.get("n_steps", 50),
                method=options.get("method", "gausslegendre"),
                internal_batch_size=options.get("internal_batch_size"),
            )
        if method == "guided_backprop":
            return guided_backprop(model, x, targets, forward_args(extra))
        if method == "grad_cam":
            layer = _resolve_layer(model, options.get("layer"), x)
            cam = LayerGradCam(model, layer).attribute(
                x,
                target=targets,
                additional_forward_args=extra,
                relu_attributions=options.get("relu_attributions", True),
            )
            return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")
        # smoothgrad
        seed = options.get("seed", 0)
        stdev = float(options.get("stdevs", 0.15)) * float(inputs.max() - inputs.min())
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            return NoiseTunnel(Saliency(model)).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=int(options.get("nt_samples", 25)),
                nt_samples_batch_size=options.get("nt_samples_batch_size"),
                stdevs=stdev,
                target=targets,
                abs=False,
                additional_forward_args=extra,
            )
        finally:
            torch.random.set_rng_state(gen_state)

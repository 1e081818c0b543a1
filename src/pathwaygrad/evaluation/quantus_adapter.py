"""A Quantus-compatible ``explain_func``: score pathwaygrad's maps with any Quantus metric.

Quantus calls ``explain_func(model=, inputs=np.ndarray (B, C, H, W), targets=np.ndarray (B,),
**explain_func_kwargs)`` and expects a numpy array back. :func:`quantus_explain_func` is such a
function; choose the method with ``explain_func_kwargs={"method": "neuron_mct", "sparsity": 70}``
(any name :func:`pathwaygrad.explain` knows, the evaluation controls ``"edge"``, or a callable).

Nothing is cached on the model and every hook is attached per call, so Quantus's randomisation
metrics (MPRT), which call the function on deep-copied, re-initialised models, work. Quantus itself
is imported by nobody here: it stays an optional extra (``pip install pathwaygrad[quantus]``).

Example::

    import quantus
    from pathwaygrad.evaluation.quantus_adapter import quantus_explain_func

    metric = quantus.MPRT(return_last_correlation=True)
    scores = metric(model=model, x_batch=x, y_batch=y, explain_func=quantus_explain_func,
                    explain_func_kwargs={"method": "neuron_mct", "sparsity": 70.0})
"""

from __future__ import annotations

import numpy as np
import torch

from pathwaygrad._devices import model_device
from pathwaygrad.evaluation._methods import resolve_methods
from pathwaygrad.specs import MethodSpec

__all__ = ["make_explain_func", "quantus_explain_func"]

_QUANTUS_KWARGS = (
    "softmax",
    "channel_first",
    "model_predict_kwargs",
    "xai_lib",
    "abs",
    "normalise",
)


def _spec(method, options: dict) -> MethodSpec:
    if isinstance(method, MethodSpec):
        return method
    if callable(method) and not isinstance(method, str):
        return resolve_methods([method])[0]
    spec = resolve_methods([str(method)])[0]
    if options:
        spec = spec.with_options(**options)
    return spec


def quantus_explain_func(
    model,
    inputs,
    targets,
    method="gradient",
    device=None,
    channel_reduce: str | None = None,
    **options,
) -> np.ndarray:
    """Maps of ``method`` for Quantus: ``inputs`` (B, C, H, W) numpy -> (B, C, H, W) float32 numpy.

    ``targets``: (B,) class indices (Quantus's ``y_batch``); ``device``: where to run (default:
    the model's device); ``channel_reduce``: None (the method's own channels: (B, C, H, W), or
    (B, 1, H, W) for Grad-CAM) or ``"max_abs"`` (per pixel the channel value of largest |.|,
    sign kept: (B, 1, H, W)); other keyword arguments are the method's options (``sparsity``...).
    Maps are signed and unnormalised: Quantus applies ``abs`` / ``normalise`` per metric.
    """
    for k in _QUANTUS_KWARGS:  # settings Quantus may forward that are not method options
        options.pop(k, None)
    spec = _spec(method, options)
    dev = torch.device(device) if device is not None else model_device(model)
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=dev)
    t = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=dev).reshape(-1)
    if t.numel() == 1 and x.shape[0] > 1:
        t = t.expand(x.shape[0]).clone()
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        maps = spec.explain(model, x, t).float()
    finally:
        if was_training:
            model.train()
    if maps.shape[-2:] != x.shape[-2:]:
        maps = torch.nn.functional.interpolate(
            maps, size=x.shape[-2:], mode="bilinear", align_corners=False
        )
    if channel_reduce == "max_abs":
        idx = maps.abs().argmax(dim=1, keepdim=True)
        maps = maps.gather(1, idx)
    elif channel_reduce is not None:
        raise ValueError(f"channel_reduce must be None or 'max_abs', got {channel_reduce!r}")
    return maps.detach().cpu().numpy().astype(np.float32)


def make_explain_func(method="gradient", **options):
    """``quantus_explain_func`` with the method fixed: ``explain_func=make_explain_func("neuron_mct",
    sparsity=70)`` (handy where a metric takes no ``explain_func_kwargs``)."""

    def explain_func(model, inputs, targets, **kwargs):
        return quantus_explain_func(model, inputs, targets, method=method, **{**options, **kwargs})

    explain_func.__name__ = f"pathwaygrad_{method if isinstance(method, str) else 'custom'}"
    return explain_func

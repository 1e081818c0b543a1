"""Saliency methods as the evaluation protocols see them: :class:`pathwaygrad.specs.MethodSpec`.

Methods are named in the one grammar of :mod:`pathwaygrad.specs` (``"neuron_mct:sparsity=70"``,
``"ig50=integrated_gradients:n_steps=50"``, ``"gradient;grad_cam"``), given as specs, as callables
``explain(model, inputs (B, C, H, W), targets (B,) long) -> (B, C|1, H, W)`` or ``(label, callable)``
pairs. ``"random_ranking"`` (uniform random pixel scores, the ROAR / perturbation baseline) and
``"edge"`` (Sobel edge magnitude of the input, the sanity checks' control) are the controls.
:func:`resolve_methods` validates every name and option before a protocol starts any work.

Pathway methods get ``sparsity=DEFAULT_SPARSITY`` unless the spec sets one (the paper does not state
the sparsity of its ROAR / LeRF maps); the chosen value is part of the label and of every result row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from pathwaygrad._devices import model_device
from pathwaygrad.specs import MethodSpec, parse_methods

__all__ = [
    "DEFAULT_SPARSITY",
    "explain_in_batches",
    "method_pixel_scores",
    "predict",
    "resolve_methods",
]

DEFAULT_SPARSITY = 90.0


def resolve_methods(
    methods: Iterable | str | Callable | MethodSpec,
    pathway_defaults: dict | None = None,
) -> list[MethodSpec]:
    """The user's methods as validated specs with unique labels (before any work starts).

    Pathway methods get ``pathway_defaults`` (default ``{"sparsity": DEFAULT_SPARSITY}``) for the
    options they do not set; the options then show in the label (``neuron_mct(sparsity=90)``).
    """
    defaults = {"sparsity": DEFAULT_SPARSITY} if pathway_defaults is None else pathway_defaults
    specs = parse_methods(methods)
    if defaults:
        specs = [s.with_options(override=False, **defaults) if s.is_pathway else s for s in specs]
    return specs


@torch.no_grad()
def predict(model, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities (N, K) of ``model`` on ``inputs`` (N, C, H, W), in eval mode, on CPU."""
    device = model_device(model)
    outs = []
    for start in range(0, inputs.shape[0], batch_size):
        outs.append(
            torch.softmax(model(inputs[start : start + batch_size].to(device)).float(), 1).cpu()
        )
    return torch.cat(outs)


def explain_in_batches(
    model,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    spec: MethodSpec,
    batch_size: int = 64,
    progress: bool = False,
    desc: str | None = None,
    activations: str | Sequence[str] | None = None,
) -> Iterable[tuple[int, torch.Tensor]]:
    """Yield ``(start, maps)`` for consecutive batches of ``inputs``; maps are float32 on the CPU.

    Inputs are moved to the model's device batch by batch; targets are (N,) long;
    ``activations``: the activation kinds pathway methods select in (None: ReLUs).
    """
    device = model_device(model)
    starts: Sequence[int] = range(0, inputs.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc or f"maps {spec.label}", unit="batch", leave=False)
    for start in starts:
        xb = inputs[start : start + batch_size].to(device)
        tb = torch.as_tensor(targets[start : start + batch_size]).long().to(device)
        yield start, spec.explain(model, xb, tb, activations=activations).cpu()


def method_pixel_scores(
    model,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    spec: MethodSpec,
    *,
    rank_by: str = "max",
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    activations: str | Sequence[str] | None = None,
) -> torch.Tensor:
    """Pixel scores (N, H, W) float32 of ``spec`` on ``inputs`` (see :mod:`._ranking`).

    ``random_ranking`` draws uniform scores from ``seed`` instead of calling a model.
    """
    from pathwaygrad.evaluation._ranking import pixel_scores, random_scores

    n, _, h, w = inputs.shape
    if spec.is_random_ranking:
        return random_scores(n, h, w, seed=seed)
    out = torch.empty(n, h, w)
    for start, maps in explain_in_batches(
        model,
        inputs,
        targets,
        spec,
        batch_size=batch_size,
        progress=progress,
        activations=activations,
    ):
        out[start : start + maps.shape[0]] = pixel_scores(maps, rank_by, size=(h, w))
    return out

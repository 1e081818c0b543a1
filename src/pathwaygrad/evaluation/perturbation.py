"""Pixel perturbation without retraining: LeRF / MoRF relative drop, deletion / insertion curves.

**LeRF / MoRF** (paper section 3.6): remove the least (LeRF) or most (MoRF) important t % of the
pixels (all channels of a pixel), fill them with the per-channel mean, and measure the relative
change of the softmax probability of the original class c:
``|p_c(x) - p_c(x')| / p_c(x)`` (unitless, >= 0). LeRF: lower is better (the unimportant pixels
really were unimportant); MoRF: higher is better. Default fractions: 1..10 % in steps of 1 and
10..90 % in steps of 10. Areas are trapezoids over the fraction axis (in [0, 1], starting at the
point (0, 0)): ``area_0_10`` over 0..10 % (the paper's number) and ``area`` over all fractions.

**Deletion / insertion** (Petsiuk et al. 2018): deletion replaces the top pixels with a baseline,
most important first, and tracks p_c; insertion starts from the baseline and restores the top pixels.
AUC over the fraction axis [0, 1]: deletion lower is better, insertion higher is better.

Everything is batched on the model's device: for a batch of images, all perturbation levels are
stacked into one forward pass of at most ``max_forward`` images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pathwaygrad._devices import model_device
from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._meta import HIGHER, LOWER, ProtocolInfo
from pathwaygrad.evaluation._methods import (
    method_pixel_scores,
    predict,
    resolve_methods,
)
from pathwaygrad.evaluation._ranking import apply_fill, pixel_ranks, removal_mask
from pathwaygrad.evaluation._results import ResultTable
from pathwaygrad.specs import MethodSpec

__all__ = [
    "DEFAULT_FRACTIONS",
    "DELETION_INSERTION",
    "PROTOCOL",
    "deletion_insertion",
    "perturbation_curves",
    "pixel_perturbation",
    "trapezoid",
]

PROTOCOL = ProtocolInfo(
    name="perturbation",
    summary="LeRF / MoRF pixel removal (mean fill) without retraining; relative drop of p_c.",
    needs=("model", "inputs (N, C, H, W)", "methods"),
    scores={"relative_drop (lerf)": LOWER, "relative_drop (morf)": HIGHER},
    reference="Khakzar et al. CVPR 2021, sec. 4.3 (LeRF); Samek et al. 2017 (MoRF)",
)
DELETION_INSERTION = ProtocolInfo(
    name="deletion_insertion",
    summary="Deletion / insertion curves of p_c with their areas.",
    needs=("model", "inputs (N, C, H, W)", "methods"),
    scores={"auc (deletion)": LOWER, "auc (insertion)": HIGHER},
    reference="Petsiuk et al. BMVC 2018 (RISE)",
)

DEFAULT_FRACTIONS = tuple(round(0.01 * i, 2) for i in range(1, 11)) + tuple(
    round(0.1 * i, 1) for i in range(2, 10)
)

# fill(x (M, C, H, W), remove (M, H, W) bool, image_index (M,) long, level_index (M,) long) -> x'
FillFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def trapezoid(y: Sequence[float], x: Sequence[float]) -> float:
    """Area under the piecewise linear curve through (x, y) (trapezoidal rule)."""
    ys, xs = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if ys.size < 2:
        return 0.0
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))


def _check_fractions(fractions) -> list[float]:
    fr = [float(f) for f in fractions]
    if not fr:
        raise UserError("give at least one pixel fraction")
    for f in fr:
        if not 0.0 <= f <= 1.0:
            raise UserError(
                f"pixel fractions are fractions in [0, 1] (0.1 = 10 %), got {f}; "
                "divide percentages by 100"
            )
    return fr


def constant_fill(value) -> FillFn:
    """A fill that puts ``value`` (number or per-channel (C,) tensor) into removed pixels."""

    def fill(x, remove, image_index, level_index):
        return apply_fill(x, remove, value)

    return fill


def image_fill(images: torch.Tensor) -> FillFn:
    """A fill that takes removed pixels from per-image baselines ``images`` (N, C, H, W)."""

    def fill(x, remove, image_index, level_index):
        base = images[image_index.cpu()].to(x.device, x.dtype)
        return torch.where(remove.unsqueeze(1), base, x)

    return fill


def gaussian_blur(x: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Per-channel Gaussian blur of (N, C, H, W) with reflect padding (the insertion baseline)."""
    radius = max(1, int(round(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def make_fill(fill, inputs: torch.Tensor) -> tuple[FillFn, str]:
    """Turn ``fill`` into a :data:`FillFn`; return it and a description for the results.

    ``"mean"``: the per-channel mean of ``inputs``; ``"zero"``; ``"blur"``: a Gaussian blur
    (sigma 5 px) of each image; a number; a (C,) tensor of per-channel values; or a callable
    :data:`FillFn`.
    """
    if callable(fill):
        return fill, getattr(fill, "__name__", "custom")
    if isinstance(fill, str):
        if fill == "mean":
            mean = inputs.float().mean(dim=(0, 2, 3))
            return constant_fill(mean), "per-channel mean of the inputs " + str(
                [round(float(v), 4) for v in mean]
            )
        if fill == "zero":
            return constant_fill(0.0), "zero"
        if fill == "blur":
            return image_fill(gaussian_blur(inputs.float())), "gaussian blur (sigma 5 px)"
        raise UserError(f"unknown fill {fill!r}; use 'mean', 'zero', 'blur', a number or a tensor")
    value = torch.as_tensor(fill, dtype=torch.float32)
    if value.ndim > 1:
        raise UserError("a fill tensor must be a number or per-channel values (C,)")
    return constant_fill(value), f"constant {value.tolist()}"


CPU_MAX_FORWARD = 128
ACCELERATOR_MAX_FORWARD = 1024


def resolve_max_forward(max_forward: int | None, device) -> int:
    """Images per forward pass of the perturbed inputs: ``max_forward``, or by default 128 on the
    CPU and 1024 on an accelerator.

    On the CPU small forwards stay in cache: the CIFAR ResNet-20 costs 0.51-0.54 ms per image at
    32-128 images per forward and 1.66 ms at 1,024 (2-core EPYC, 2026-11-26), so the CPU default
    is 128; a GPU wants large forwards.
    """
    if max_forward is None:
        return CPU_MAX_FORWARD if torch.device(device).type == "cpu" else ACCELERATOR_MAX_FORWARD
    if isinstance(max_forward, bool) or not isinstance(max_forward, int) or max_forward < 1:
        raise UserError(f"max_forward must be a positive number of images, got {max_forward!r}")
    return max_forward


@torch.no_grad()
def perturbation_curves(
    model,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    ranks: torch.Tensor,
    fractions: Sequence[float],
    order: str,
    fill: FillFn,
    *,
    batch_size: int = 64,
    max_forward: int | None = None,
    progress: bool = False,
    desc: str = "perturb",
) -> dict[str, torch.Tensor]:
    """Probabilities of the target class after removing pixels at every level, batched.

    ``inputs`` (N, C, H, W); ``targets`` (N,) long; ``ranks`` (N, H, W) (0 = most important);
    ``fractions`` (L,) in [0, 1]; ``order``: ``"morf"`` / ``"lerf"`` (remove top / bottom) or
    ``"keep"`` (remove all but the top: insertion). Each batch of images is expanded to all L
    levels and pushed through the model in forwards of at most ``max_forward`` images (None: see
    :func:`resolve_max_forward`).

    Returns ``{"prob": (N, L) float, "pred": (N, L) long}`` on the CPU.
    """
    device = model_device(model)
    n = inputs.shape[0]
    levels = len(fractions)
    prob = torch.empty(n, levels)
    pred = torch.empty(n, levels, dtype=torch.long)
    max_forward = resolve_max_forward(max_forward, device)
    per_forward = max(1, max_forward // max(1, min(batch_size, n)))
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", leave=False)
    for start in starts:
        x = inputs[start : start + batch_size].to(device).float()
        t = targets[start : start + batch_size].to(device).long()
        r = ranks[start : start + batch_size].to(device)
        b = x.shape[0]
        img_idx = torch.arange(start, start + b, device=device)
        for l0 in range(0, levels, per_forward):
            lv = list(range(l0, min(levels, l0 + per_forward)))
            masks = torch.cat(
                [removal_mask(r, fractions[i], order) for i in lv]
            )  # (len(lv)*b, H, W)
            xs = x.repeat(len(lv), 1, 1, 1)
            level_idx = torch.tensor(lv, device=device).repeat_interleave(b)
            xp = fill(xs, masks, img_idx.repeat(len(lv)), level_idx)
            logits = torch.cat([model(part) for part in xp.split(max_forward)]).float()
            p = torch.softmax(logits, dim=1).gather(1, t.repeat(len(lv)).unsqueeze(1)).squeeze(1)
            prob[start : start + b, l0 : l0 + len(lv)] = p.view(len(lv), b).t().cpu()
            pred[start : start + b, l0 : l0 + len(lv)] = logits.argmax(1).view(len(lv), b).t().cpu()
    return {"prob": prob, "pred": pred}


def method_curves(
    model,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    specs: Sequence[MethodSpec],
    orders: Sequence[tuple[str, str]],
    fractions: Sequence[float],
    fill: FillFn,
    *,
    rank_by: str,
    batch_size: int,
    max_forward: int | None,
    seed: int,
    progress: bool,
    activations: str | Sequence[str] | None,
    prefix: str = "",
) -> Iterator[tuple[MethodSpec, str, dict[str, torch.Tensor]]]:
    """The curves of every method x order, each method's pixel ranking computed once.

    ``orders``: ``(name, order)`` pairs, ``order`` as in :func:`perturbation_curves` (e.g.
    ``("deletion", "morf")``). Yields ``(spec, name, curves)``; the LeRF / MoRF, deletion /
    insertion and ROAD protocols are this loop with their own fill and summary.
    """
    for spec in specs:
        scores = method_pixel_scores(
            model,
            inputs,
            targets,
            spec,
            rank_by=rank_by,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            activations=activations,
        )
        ranks = pixel_ranks(scores, seed=seed)
        for name, order in orders:
            yield (
                spec,
                name,
                perturbation_curves(
                    model,
                    inputs,
                    targets,
                    ranks,
                    fractions,
                    order,
                    fill,
                    batch_size=batch_size,
                    max_forward=max_forward,
                    progress=progress,
                    desc=f"{prefix}{name} {spec.label}",
                ),
            )


def _targets(model, inputs, targets, batch_size) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets (N,), original probability of each target (N,)); default target: predicted class."""
    probs = predict(model, inputs, batch_size)
    if targets is None:
        t = probs.argmax(1)
    else:
        t = torch.as_tensor(targets).long().reshape(-1)
        if t.numel() == 1 and inputs.shape[0] > 1:
            t = t.expand(inputs.shape[0]).clone()
        if t.shape[0] != inputs.shape[0]:
            raise UserError(f"targets has {t.shape[0]} entries for {inputs.shape[0]} inputs")
    return t, probs.gather(1, t.unsqueeze(1)).squeeze(1)


def _check_inputs(inputs) -> torch.Tensor:
    x = torch.as_tensor(inputs)
    if x.ndim != 4 or not x.is_floating_point():
        raise UserError(
            f"inputs must be a float tensor (N, C, H, W), got {tuple(x.shape)} {x.dtype}"
        )
    return x


def pixel_perturbation(
    model,
    inputs: torch.Tensor,
    methods,
    *,
    orders: Sequence[str] = ("lerf", "morf"),
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    fill="mean",
    targets=None,
    rank_by: str = "max",
    batch_size: int = 64,
    max_forward: int | None = None,
    seed: int = 0,
    progress: bool = True,
    activations: str | Sequence[str] | None = None,
) -> ResultTable:
    """LeRF / MoRF: relative drop of the original class's probability when pixels are removed.

    ``model``: a classifier in eval mode returning logits; ``inputs``: (N, C, H, W) as the model
    expects them; ``methods``: see :func:`~pathwaygrad.evaluation._methods.resolve_methods`
    (``"random_ranking"`` gives the random baseline); ``targets``: None = each input's predicted
    class (the paper), or labels; ``fill``: see :func:`make_fill`; ``rank_by``: ``"max"`` /
    ``"abs"``; ``seed``: tie-breaking and the random ranking; ``activations``: the activation
    kinds pathway methods select neurons in (None: ReLUs; see :func:`pathwaygrad.select_pathway`).

    Returns a :class:`ResultTable` with one row per method x order x fraction: ``method``,
    ``order``, ``fraction``, ``relative_drop`` (mean over images), ``relative_drop_std``, ``prob``
    (mean p_c(x')), ``n``; ``summary[method][order]`` holds ``area_0_10``, ``area`` and
    ``drop_at_10``.
    """
    x = _check_inputs(inputs)
    fr = _check_fractions(fractions)
    for o in orders:
        if o not in ("lerf", "morf"):
            raise UserError(f"orders must be 'lerf' and/or 'morf', got {o!r}")
    specs = resolve_methods(methods)
    t, p0 = _targets(model, x, targets, batch_size)
    fill_fn, fill_desc = make_fill(fill, x)
    h, w = x.shape[-2:]
    rows: list[dict] = []
    summary: dict = {}
    for spec, order, curves in method_curves(
        model,
        x,
        t,
        specs,
        [(o, o) for o in orders],
        fr,
        fill_fn,
        rank_by=rank_by,
        batch_size=batch_size,
        max_forward=max_forward,
        seed=seed,
        progress=progress,
        activations=activations,
    ):
        drop = (p0.unsqueeze(1) - curves["prob"]).abs() / p0.clamp_min(1e-12).unsqueeze(1)
        for i, f in enumerate(fr):
            rows.append(
                {
                    "method": spec.label,
                    "order": order,
                    "fraction": f,
                    "relative_drop": float(drop[:, i].mean()),
                    "relative_drop_std": float(drop[:, i].std()) if len(drop) > 1 else 0.0,
                    "prob": float(curves["prob"][:, i].mean()),
                    "n": int(x.shape[0]),
                }
            )
        mean_drop = drop.mean(0).tolist()
        xs, ys = [0.0] + fr, [0.0] + mean_drop
        small = [(a, b) for a, b in zip(xs, ys) if a <= 0.1 + 1e-9]
        summary.setdefault(spec.label, {})[order] = {
            "area_0_10": trapezoid([b for _, b in small], [a for a, _ in small]),
            "area": trapezoid(ys, xs),
            "drop_at_10": mean_drop[fr.index(0.1)] if 0.1 in fr else None,
        }
    meta = {
        **PROTOCOL.to_dict(),
        "settings": {
            "orders": list(orders),
            "fractions": fr,
            "fill": fill_desc,
            "targets": "predicted class" if targets is None else "given",
            "rank_by": rank_by,
            "seed": seed,
            "n_images": int(x.shape[0]),
            "image_size": [int(h), int(w)],
        },
        "methods": [s.describe() for s in specs],
    }
    return ResultTable(rows, summary, meta)


def deletion_insertion(
    model,
    inputs: torch.Tensor,
    methods,
    *,
    steps: int = 20,
    baseline="mean",
    curves: Sequence[str] = ("deletion", "insertion"),
    targets=None,
    rank_by: str = "max",
    batch_size: int = 64,
    max_forward: int | None = None,
    seed: int = 0,
    progress: bool = True,
    activations: str | Sequence[str] | None = None,
) -> ResultTable:
    """Deletion and insertion curves (``steps`` + 1 points from 0 to 100 %) and their AUC.

    ``baseline``: what removed pixels become (deletion) / what the insertion starts from; see
    :func:`make_fill` (``"blur"`` is RISE's insertion baseline). Rows: ``method``, ``curve``,
    ``fraction``, ``prob`` (mean p_c), ``prob_std``, ``accuracy`` (share still predicting the
    target), ``n``; ``summary[method][curve] = {"auc": ...}`` (trapezoid over fraction in [0, 1]).
    """
    x = _check_inputs(inputs)
    if steps < 1:
        raise UserError(f"steps must be >= 1, got {steps}")
    for curve in curves:
        if curve not in ("deletion", "insertion"):
            raise UserError(f"curves must be 'deletion' and/or 'insertion', got {curve!r}")
    fr = [i / steps for i in range(steps + 1)]
    specs = resolve_methods(methods)
    t, _ = _targets(model, x, targets, batch_size)
    fill_fn, fill_desc = make_fill(baseline, x)
    rows: list[dict] = []
    summary: dict = {}
    for spec, curve, res in method_curves(
        model,
        x,
        t,
        specs,
        [(c, "morf" if c == "deletion" else "keep") for c in curves],
        fr,
        fill_fn,
        rank_by=rank_by,
        batch_size=batch_size,
        max_forward=max_forward,
        seed=seed,
        progress=progress,
        activations=activations,
    ):
        acc = (res["pred"] == t.unsqueeze(1)).float()
        for i, f in enumerate(fr):
            rows.append(
                {
                    "method": spec.label,
                    "curve": curve,
                    "fraction": f,
                    "prob": float(res["prob"][:, i].mean()),
                    "prob_std": float(res["prob"][:, i].std()) if len(x) > 1 else 0.0,
                    "accuracy": float(acc[:, i].mean()),
                    "n": int(x.shape[0]),
                }
            )
        summary.setdefault(spec.label, {})[curve] = {
            "auc": trapezoid(res["prob"].mean(0).tolist(), fr)
        }
    meta = {
        **DELETION_INSERTION.to_dict(),
        "settings": {
            "steps": steps,
            "baseline": fill_desc,
            "targets": "predicted class" if targets is None else "given",
            "rank_by": rank_by,
            "seed": seed,
            "n_images": int(x.shape[0]),
        },
        "methods": [s.describe() for s in specs],
    }
    return ResultTable(rows, summary, meta)

"""Local linearity of a pathway, measured (paper section 1 claim, section 4 expectation).

A ReLU network with fixed masks is piecewise linear: it is exactly linear (affine) on each region
of input space where the on/off *pattern* of its kept neurons does not change. The paper claims
that contribution pathways are linear in an L2 ball around the input while the full network is
not. This module measures it instead of assuming it:

- :func:`pattern_radius`: along a direction u (unit L2 norm, in the model's input space), the
  largest t such that the pattern of the kept neurons at x + s u equals the one at x for all
  s in [0, t). Regions of a piecewise-linear network are convex, so the pattern is unchanged on
  [0, r) and differs beyond: r is found by bisection (in log t, relative precision ``rtol``)
  between ``t_min`` and ``t_max``. Directions: the gradient of the target logit of the masked
  network and ``n_random`` random Gaussian directions. Report the minimum over directions (an
  upper bound on the L2 radius of the linear ball around x) and the median over random ones.
- :func:`linearization_error`: |f(x+d) - f(x) - grad f(x) . d| / |f(x+d) - f(x)| for d = r u at
  several radii r, f = the target logit of the masked network. Zero (up to rounding) inside the
  region, growing outside.

"Pattern" means (activation output > 0) of every kept neuron, which is the linear region only for
ReLU / leaky ReLU calls; the switches of max-pooling are not counted (a warning says so). Work is
done in float64 by default on a copy of the model, so that rounding does not flip near-zero
neurons; the user's model is not touched.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pathwaygrad._io import clean_json
from pathwaygrad.analysis._masked import mask_transform
from pathwaygrad.errors import UserError
from pathwaygrad.presets import LINEARITY_METHODS
from pathwaygrad.sites import ActivationRunner

__all__ = [
    "LinearityResult",
    "linearity_analysis",
    "linearity_records",
    "linearization_error",
    "local_linearity",
    "pattern_radius",
    "prepare",
]

_PIECEWISE_LINEAR = ("relu", "leaky_relu")


@dataclass
class Prepared:
    """A model made ready for pattern measurements: a copy in ``dtype`` (or the model itself)."""

    model: Any
    dtype: torch.dtype
    activations: tuple[str, ...]


def prepare(model, dtype: torch.dtype | None = torch.float64, activations=("relu",)) -> Prepared:
    """Copy ``model`` to ``dtype`` (None: keep it) for :func:`pattern_radius` and friends.

    Pass the result instead of the model to reuse the copy across calls.
    """
    if isinstance(model, Prepared):
        return model
    activations = (activations,) if isinstance(activations, str) else tuple(activations)
    bad = [a for a in activations if a not in _PIECEWISE_LINEAR]
    if bad:
        raise UserError(
            f"local linearity is measured on piecewise-linear activations {_PIECEWISE_LINEAR}; "
            f"{bad} have no on/off pattern that bounds a linear region"
        )
    if isinstance(model, nn.Module):
        if any(
            isinstance(m, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d | nn.AdaptiveMaxPool2d)
            for m in model.modules()
        ):
            warnings.warn(
                "the model has max-pooling: its switches also bound linear regions but are not "
                "counted, so measured radii are upper bounds",
                stacklevel=2,
            )
        params = list(model.parameters()) + list(model.buffers())
        cur = next((p.dtype for p in params if p.is_floating_point()), torch.float32)
        if dtype is not None and cur != dtype:
            model = copy.deepcopy(model).to(dtype)
        else:
            dtype = cur
    elif dtype is None:
        dtype = torch.float32
    return Prepared(model, dtype, activations)


class _Pattern:
    """Reference patterns at x and a batched "has the pattern changed?" test."""

    def __init__(self, prep: Prepared, inputs: torch.Tensor, masks, chunk_size: int):
        self.prep = prep
        self.runner = ActivationRunner(prep.model, prep.activations)
        self.masks = None if masks is None else [m.to(inputs.device) for m in masks]
        self.chunk_size = int(chunk_size)
        record: list[torch.Tensor] = []
        from pathwaygrad._guard import preserved

        with preserved(prep.model), torch.no_grad():
            _, _, kinds = self.runner.forward(inputs, mask_transform(self.masks, record))
        bad = sorted(set(kinds) - set(_PIECEWISE_LINEAR))
        if bad:
            raise UserError(f"activation kinds {bad} are not piecewise linear")
        self.ref = [r > 0 for r in record]

    def changed(self, points: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """bool (N,): whether the kept neurons' pattern at ``points`` (N, ...) differs from the
        pattern of example ``owner[n]`` at its input."""
        from pathwaygrad._guard import preserved

        flags = []
        with preserved(self.prep.model), torch.no_grad():
            for start in range(0, len(points), self.chunk_size):
                own = owner[start : start + self.chunk_size]
                pts = points[start : start + self.chunk_size]
                flag = torch.zeros(len(pts), dtype=torch.bool, device=pts.device)

                def transform(i, kind, out, own=own, flag=flag):
                    on = out > 0
                    diff = on != self.ref[i][own]
                    if self.masks is not None:
                        m = self.masks[i][own]
                        diff &= m
                        out = out * m
                    flag |= diff.flatten(1).any(1)
                    return out

                self.runner.forward(pts, transform)
                flags.append(flag)
        return torch.cat(flags)


def _target_value_and_grad(prep: Prepared, x: torch.Tensor, masks, target):
    """f(x) (B,) and grad f(x) (B, ...) of the target logit of the masked network."""
    from pathwaygrad._guard import preserved
    from pathwaygrad._inputs import resolve_targets

    runner = ActivationRunner(prep.model, prep.activations)
    with preserved(prep.model), torch.enable_grad():
        xx = x.detach().clone().requires_grad_(True)
        logits, _, _ = runner.forward(xx, mask_transform(masks))
        targets = resolve_targets(target, logits)
        y = logits.gather(1, targets[:, None]).squeeze(1)
        (g,) = torch.autograd.grad(y.sum(), xx)
    return y.detach(), g.detach(), targets


def _values(prep: Prepared, points: torch.Tensor, masks, owner, targets, chunk_size: int):
    """Target logit (N,) of the masked network at ``points``; example ``owner[n]``'s masks."""
    from pathwaygrad._guard import preserved

    runner = ActivationRunner(prep.model, prep.activations)
    out = []
    with preserved(prep.model), torch.no_grad():
        for start in range(0, len(points), chunk_size):
            own = owner[start : start + chunk_size]
            sub = None if masks is None else [m[own] for m in masks]
            logits, _, _ = runner.forward(points[start : start + chunk_size], mask_transform(sub))
            out.append(logits.gather(1, targets[own][:, None]).squeeze(1))
    return torch.cat(out)


def make_directions(
    inputs: torch.Tensor, n_random: int, seed: int = 0, gradient: torch.Tensor | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Unit directions (B, D, ...): the normalised ``gradient`` (if given) then ``n_random``
    Gaussian ones drawn from ``seed`` (the same for every call with the same seed and shape)."""
    b = inputs.shape[0]
    shape = tuple(inputs.shape[1:])
    dirs, names = [], []
    if gradient is not None:
        g = gradient.reshape(b, 1, -1)
        dirs.append(g / g.norm(dim=2, keepdim=True).clamp(min=1e-300))
        names.append("gradient")
    if n_random > 0:
        gen = torch.Generator().manual_seed(int(seed))
        r = torch.randn((b, n_random, math.prod(shape)), generator=gen, dtype=torch.float64)
        r = (r / r.norm(dim=2, keepdim=True)).to(inputs.device, inputs.dtype)
        dirs.append(r)
        names += [f"random{i}" for i in range(n_random)]
    if not dirs:
        raise UserError("no direction: ask for the gradient direction or n_random >= 1")
    return torch.cat(dirs, dim=1).reshape(b, -1, *shape), names


@torch.no_grad()
def _bisect(pattern: _Pattern, x, dirs, t_min, t_max, rtol):
    b, d = dirs.shape[:2]
    flat_dirs = dirs.reshape(b * d, *dirs.shape[2:])
    base = x.repeat_interleave(d, dim=0)
    owner = torch.arange(b, device=x.device).repeat_interleave(d)

    def changed_at(t, sel):
        pts = base[sel] + t[:, None].view(-1, *([1] * (base.ndim - 1))) * flat_dirs[sel]
        return pattern.changed(pts, owner[sel])

    n = b * d
    every = torch.arange(n, device=x.device)
    tt = torch.full((n,), float(t_max), dtype=torch.float64, device=x.device)
    at_max = changed_at(tt.to(x.dtype), every)
    at_min = changed_at(torch.full_like(tt, float(t_min)).to(x.dtype), every)
    lo = torch.full((n,), float(t_min), dtype=torch.float64, device=x.device)
    hi = tt.clone()
    censored = torch.zeros(n, dtype=torch.int8, device=x.device)
    censored[~at_max] = 1
    censored[at_min] = -1
    active = (censored == 0).nonzero().squeeze(1)
    while len(active) and bool((hi[active] / lo[active] > 1 + rtol).any()):
        mid = (lo[active] * hi[active]).sqrt()
        ch = changed_at(mid.to(x.dtype), active)
        hi[active[ch]] = mid[ch]
        lo[active[~ch]] = mid[~ch]
        active = active[(hi[active] / lo[active]) > 1 + rtol]
    radius = (lo * hi).sqrt()
    radius[censored == 1] = float(t_max)
    radius[censored == -1] = float(t_min)
    return radius.view(b, d), censored.view(b, d)


def pattern_radius(
    model,
    inputs: torch.Tensor,
    masks: Sequence[torch.Tensor] | None = None,
    directions: torch.Tensor | None = None,
    *,
    target=None,
    n_random: int = 16,
    gradient: bool = True,
    t_min: float = 1e-5,
    t_max: float = 1e2,
    rtol: float = 1e-2,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
    activations: Sequence[str] = ("relu",),
    chunk_size: int = 256,
) -> dict:
    """L2 distance along directions within which the kept neurons' on/off pattern is unchanged.

    Args:
        model: the network (or a :func:`prepare` result).
        inputs: (B, ...) inputs in the model's input space (e.g. normalised images).
        masks: the pathway's masks (one bool tensor (B, ...) per activation call, e.g.
            ``pathway.masks``), or None for the full network.
        directions: (B, D, ...) or (D, ...) directions (normalised here); None: the gradient
            direction of the target logit (if ``gradient``) and ``n_random`` Gaussian ones.
        target: class whose logit defines the gradient direction (None: predicted by the
            masked network).
        t_min, t_max: search range of the radius (input-space L2 units); rtol: relative
            precision of the bisection.

    Returns:
        ``{"radius": (B, D) float64, "censored": (B, D) int8 (-1: radius < t_min, reported as
        t_min; 1: no change up to t_max, reported as t_max), "directions": names}``; the
        gradient direction's radius is NaN where the gradient is exactly 0.
    """
    prep = prepare(model, dtype, activations)
    x = inputs.detach().to(prep.dtype)
    grad: torch.Tensor | None = None
    if directions is None:
        grad = _target_value_and_grad(prep, x, masks, target)[1] if gradient else None
        dirs, names = make_directions(x, n_random, seed, grad)
    else:
        dirs = directions.to(x.device, prep.dtype)
        if dirs.ndim == x.ndim:
            dirs = dirs.unsqueeze(0).expand(x.shape[0], *dirs.shape)
        flat = dirs.reshape(dirs.shape[0], dirs.shape[1], -1)
        dirs = (flat / flat.norm(dim=2, keepdim=True)).reshape(dirs.shape)
        names = [f"direction{i}" for i in range(dirs.shape[1])]
    pattern = _Pattern(prep, x, masks, chunk_size)
    radius, censored = _bisect(pattern, x, dirs, t_min, t_max, rtol)
    if directions is None and grad is not None:
        radius[_zero(grad), 0] = float("nan")
    return {"radius": radius.cpu(), "censored": censored.cpu(), "directions": names}


def _zero(grad: torch.Tensor) -> torch.Tensor:
    """(B,) True where the gradient is exactly 0 (the masked network ignores its input)."""
    return grad.flatten(1).abs().amax(1) == 0


@torch.no_grad()
def linearization_error(
    model,
    inputs: torch.Tensor,
    masks: Sequence[torch.Tensor] | None,
    directions: torch.Tensor,
    radii: torch.Tensor | Sequence[float],
    *,
    target=None,
    dtype: torch.dtype | None = torch.float64,
    activations: Sequence[str] = ("relu",),
    chunk_size: int = 256,
) -> torch.Tensor:
    """|f(x+d) - f(x) - grad f(x) . d| / |f(x+d) - f(x)| for d = r u.

    Args:
        directions: (B, D, ...) unit directions u.
        radii: (R,) radii shared by all directions, or (B, R, D) per example and direction.

    Returns:
        float64 (B, R, D); NaN where f(x+d) = f(x).
    """
    prep = prepare(model, dtype, activations)
    x = inputs.detach().to(prep.dtype)
    b, d = directions.shape[:2]
    fx, g, targets = _target_value_and_grad(prep, x, masks, target)
    radii = torch.as_tensor(radii, dtype=torch.float64)
    if radii.ndim == 1:
        radii = radii.view(1, -1, 1).expand(b, -1, d)
    r = radii.shape[1]
    u = directions.to(prep.dtype)
    steps = radii.to(prep.dtype)[..., None] * u.reshape(b, 1, d, -1)  # (B, R, D, P)
    points = (x.reshape(b, 1, 1, -1) + steps).reshape(b * r * d, *x.shape[1:])
    owner = torch.arange(b, device=x.device).repeat_interleave(r * d)
    fxd = _values(prep, points, masks, owner, targets, chunk_size).view(b, r, d).double()
    lin = (steps.double() * g.reshape(b, 1, 1, -1).double()).sum(-1)
    delta = fxd - fx.double().view(b, 1, 1)
    err = (delta - lin).abs() / delta.abs()
    return torch.where(delta != 0, err, torch.full_like(err, float("nan"))).cpu()


def local_linearity(
    model,
    inputs: torch.Tensor,
    masks: Sequence[torch.Tensor] | None = None,
    *,
    target=None,
    n_random: int = 16,
    radii: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    radius_multiples: Sequence[float] = (0.5, 2.0),
    t_min: float = 1e-5,
    t_max: float = 1e2,
    rtol: float = 1e-2,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
    activations: Sequence[str] = ("relu",),
    chunk_size: int = 256,
) -> dict:
    """Pattern radii and linearisation errors of one pathway (or the full network) per example.

    Directions: the gradient of the (masked) target logit, then ``n_random`` random ones (the
    same for every pathway with the same ``seed``). Errors are measured at the absolute
    ``radii`` and at ``radius_multiples`` times each direction's own measured radius (inside:
    multiple < 1, error ~ 0; outside: > 1).

    Returns a dict of tensors: ``radius`` (B, D), ``censored`` (B, D), ``error`` (B, R, D),
    ``error_rel`` (B, len(radius_multiples), D), and per example ``radius_min`` (B,) over all
    directions, ``radius_median`` (B,) over random directions, ``radius_grad`` (B,; NaN where
    the gradient is exactly 0, i.e. the pathway's output does not depend on the input), and
    ``zero_gradient`` (B,) bool.
    """
    prep = prepare(model, dtype, activations)
    x = inputs.detach().to(prep.dtype)
    _, grad, targets = _target_value_and_grad(prep, x, masks, target)
    dirs, names = make_directions(x, n_random, seed, grad)
    pattern = _Pattern(prep, x, masks, chunk_size)
    radius, censored = _bisect(pattern, x, dirs, t_min, t_max, rtol)
    zero = _zero(grad)
    radius[zero, 0] = float("nan")  # no gradient direction: the output ignores the input
    kw = dict(target=targets, dtype=None, activations=prep.activations, chunk_size=chunk_size)
    err = linearization_error(prep, x, masks, dirs, list(radii), **kw)
    mult = torch.as_tensor(list(radius_multiples), dtype=torch.float64)
    per = mult.view(1, -1, 1) * radius.view(radius.shape[0], 1, -1)
    err_rel = linearization_error(prep, x, masks, dirs, per, **kw)
    radius = radius.cpu()
    return {
        "radius": radius,
        "censored": censored.cpu(),
        "directions": names,
        "error": err,
        "error_rel": err_rel,
        "radius_min": radius.nan_to_num(float("inf")).min(dim=1).values,
        "radius_median": radius[:, 1:].median(dim=1).values if n_random else radius[:, 0],
        "radius_grad": radius[:, 0],
        "zero_gradient": zero.cpu(),
        "targets": targets.cpu(),
    }


# ------------------------------------------------------------------------------ dataset level
PER_EXAMPLE = ("radius_min", "radius_median", "radius_grad", "censored_share")


def linearity_records(
    model,
    inputs: torch.Tensor,
    pathway_set,
    indices: Sequence[int] | np.ndarray,
    labels: Sequence[str] | None = None,
    *,
    include_full: bool = True,
    **options,
) -> dict:
    """Local linearity of the full network and of the pathways ``labels`` of one batch.

    Returns ``{name: {sparsity: record}}`` with ``name`` "full" (sparsity 0.0) or a method
    label, ``record`` a dict of numpy arrays: ``radius_min``/``radius_median``/``radius_grad``
    (B,), ``censored_share`` (B,), ``error`` (B, R) median over random directions,
    ``error_grad`` (B, R), ``error_rel`` (B, len(radius_multiples)) median over random
    directions; plus ``"index"``.
    """
    prep = prepare(model, options.pop("dtype", torch.float64), pathway_set.dead.activations)
    labels = [s.label for s in pathway_set.specs] if labels is None else list(labels)
    out: dict = {"index": np.asarray(indices)}
    jobs = [("full", 0.0, None)] if include_full else []
    jobs += [
        (lab, s, pathway_set.pathways[(lab, s)].masks)
        for lab in labels
        for s in pathway_set.sparsities
    ]
    for name, s, masks in jobs:
        res = local_linearity(prep, inputs, masks, target=pathway_set.targets, **options)
        rnd = slice(1, None) if res["error"].shape[2] > 1 else slice(0, None)
        rec = {
            "radius_min": res["radius_min"].numpy(),
            "radius_median": res["radius_median"].numpy(),
            "radius_grad": res["radius_grad"].numpy(),
            "censored_share": (res["censored"] != 0).double().mean(1).numpy(),
            "zero_gradient": res["zero_gradient"].double().numpy(),
            "error": _nanmedian(res["error"][:, :, rnd]),
            "error_grad": res["error"][:, :, 0].numpy(),
            "error_rel": _nanmedian(res["error_rel"][:, :, rnd]),
        }
        out.setdefault(name, {})[s] = rec
    return out


def _nanmedian(t: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(t.numpy(), axis=-1)


@dataclass
class LinearityResult:
    """Per-example local-linearity numbers: ``values[name][sparsity][field]`` (N, ...) arrays.

    ``name`` is "full" (the unmasked network, sparsity 0.0) or a method label; radii are L2
    distances in the model's input space; errors are relative (see module docstring).
    """

    names: list[str]
    index: np.ndarray
    values: dict
    radii: list[float]
    radius_multiples: list[float]
    settings: dict

    @classmethod
    def from_batches(cls, batches: list[dict], radii, radius_multiples, settings):
        names = [k for k in batches[0] if k != "index"]
        values = {
            n: {
                s: {f: np.concatenate([b[n][s][f] for b in batches]) for f in batches[0][n][s]}
                for s in batches[0][n]
            }
            for n in names
        }
        return cls(
            names=names,
            index=np.concatenate([b["index"] for b in batches]),
            values=values,
            radii=list(radii),
            radius_multiples=list(radius_multiples),
            settings=dict(settings),
        )

    def rows(self) -> list[dict]:
        """One row per (pathway, sparsity): medians and geometric means over examples."""
        rows = []
        for n in self.names:
            for s, v in self.values[n].items():
                row = {"pathway": n, "sparsity": s, "n_examples": len(v["radius_min"])}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    for f in ("radius_min", "radius_median", "radius_grad"):
                        row[f"{f}_median"] = float(np.nanmedian(v[f]))
                        row[f"{f}_gmean"] = float(np.exp(np.nanmean(np.log(v[f]))))
                        row[f"{f}_q10"] = float(np.nanquantile(v[f], 0.1))
                        row[f"{f}_q90"] = float(np.nanquantile(v[f], 0.9))
                    row["censored_share"] = float(np.mean(v["censored_share"]))
                    row["zero_gradient_share"] = float(np.mean(v.get("zero_gradient", np.nan)))
                    for j, r in enumerate(self.radii):
                        row[f"error_at_{r:g}"] = float(np.nanmedian(v["error"][:, j]))
                        row[f"error_grad_at_{r:g}"] = float(np.nanmedian(v["error_grad"][:, j]))
                    for j, m in enumerate(self.radius_multiples):
                        row[f"error_at_{m:g}x_radius"] = float(np.nanmedian(v["error_rel"][:, j]))
                rows.append(row)
        return rows

    def summary(self) -> dict:
        return clean_json(
            {"settings": self.settings, "n_examples": len(self.index), "rows": self.rows()}
        )


def linearity_analysis(
    model,
    data,
    methods: Any = LINEARITY_METHODS,
    sparsities: Sequence[float] = (90.0,),
    *,
    batch_size: int = 10,
    n_examples: int | None = None,
    activations: Sequence[str] = ("relu",),
    progress: bool = False,
    n_random: int = 16,
    radii: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    radius_multiples: Sequence[float] = (0.5, 2.0),
    t_min: float = 1e-5,
    t_max: float = 1e2,
    rtol: float = 1e-2,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
) -> LinearityResult:
    """Local linearity of the full network and of the pathways of ``methods`` over a dataset.

    Arguments as :func:`pathwaygrad.analysis.overlap_analysis` and :func:`local_linearity`.
    """
    from pathwaygrad.analysis._dataset import iter_batches
    from pathwaygrad.analysis.pathways import compute_pathways, pathway_specs

    specs = pathway_specs(methods)
    prep = prepare(model, dtype, activations)
    opts: dict[str, Any] = dict(
        n_random=n_random,
        radii=radii,
        radius_multiples=radius_multiples,
        t_min=t_min,
        t_max=t_max,
        rtol=rtol,
        seed=seed,
        dtype=None,
    )
    batches = []
    for x, _, idx in iter_batches(
        data, batch_size, n_examples, progress=progress, desc="linearity"
    ):
        ps = compute_pathways(model, x, specs, sparsities, activations=activations)
        batches.append(linearity_records(prep, x, ps, idx, **opts))
    settings = {k: v for k, v in opts.items() if k != "dtype"}
    settings["dtype"] = str(prep.dtype)
    return LinearityResult.from_batches(batches, radii, radius_multiples, settings)

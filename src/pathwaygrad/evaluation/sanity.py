"""Model-randomisation sanity checks (Adebayo et al. 2018; paper section 3.4).

Randomise the model's parameters unit by unit and compare each method's map on the randomised
model with its map on the original model. A map that explains the *model* must change: a
similarity that stays near 1 means the method ignores the weights (an edge detector does).

- ``mode="cascading"``: from the top (the output layer) down, each step randomises one more unit
  and keeps the earlier ones random; ``"independent"``: each step randomises only that unit.
- ``init="paper"``: every weight and bias of the unit (BatchNorm included) redrawn from
  N(0, 0.1) (std 0.1); ``"default"``: each sub-module's own ``reset_parameters()`` (what Quantus's
  MPRT does; BatchNorm goes back to the identity with fresh running statistics).
- Units (``granularity``): ``"blocks"`` (default; the paper's "fc, then each residual block, then
  conv1"): the model's children, with ``Sequential`` / ``ModuleList`` / ``ModuleDict`` containers
  expanded, keeping those that hold parameters; ``"layers"``: every module with parameters of its
  own (conv, linear, BatchNorm); or an explicit list of module names, in the order to randomise.
- Similarity, per image, of 2-D maps (per pixel the channel value of largest magnitude, sign kept,
  divided by the image's max |map|): ``spearman`` (rank correlation of the signed maps),
  ``spearman_abs`` (of |map|), ``ssim`` (scikit-image, window 5, on |map| in [0, 1]) and ``hog``
  (Pearson correlation of scikit-image HOG features of |map|, 16 x 16 pixel cells, or half the
  image side when smaller). Lower similarity after randomisation = the method passes.

The user's model is never touched: randomisation happens on deep copies. Targets stay fixed at the
original model's predicted classes (or the given targets) at every step.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pathwaygrad.errors import UserError
from pathwaygrad.evaluation._meta import LOWER, ProtocolInfo
from pathwaygrad.evaluation._methods import explain_in_batches, predict, resolve_methods
from pathwaygrad.evaluation._results import ResultTable

__all__ = [
    "MEASURES",
    "PROTOCOL",
    "randomization_units",
    "reduce_maps",
    "reinitialize",
    "sanity_check",
    "similarity",
]

PROTOCOL = ProtocolInfo(
    name="sanity",
    summary="Randomise the model layer by layer; similarity of each map to the original map.",
    needs=("model", "inputs (N, C, H, W)", "methods"),
    scores={m: LOWER for m in ("spearman", "spearman_abs", "ssim", "hog")},
    reference="Adebayo et al. NeurIPS 2018; Khakzar et al. CVPR 2021 sec. 4.1",
)
MEASURES = ("spearman", "spearman_abs", "ssim", "hog")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def randomization_units(model: nn.Module, granularity="blocks") -> list[str]:
    """Names of the units to randomise, **top-down** (last-defined first).

    ``granularity``: ``"blocks"``, ``"layers"`` or a list of module names (kept as given).
    """
    names = dict(model.named_modules())
    if not isinstance(granularity, str):
        units = list(granularity)
        missing = [u for u in units if u not in names]
        if missing:
            raise UserError(
                f"the model has no modules {missing}; names look like {list(names)[1:6]}"
            )
        return units
    if granularity == "layers":
        units = [
            n
            for n, m in model.named_modules()
            if n and any(True for _ in m.parameters(recurse=False))
        ]
    elif granularity == "blocks":
        units = []

        def walk(module: nn.Module, prefix: str) -> None:
            for name, child in module.named_children():
                full = f"{prefix}{name}"
                if isinstance(child, _CONTAINERS):
                    walk(child, full + ".")
                elif any(True for _ in child.parameters()):
                    units.append(full)

        walk(model, "")
        if any(True for _ in model.parameters(recurse=False)):
            units.insert(0, "")  # parameters held by the model itself
    else:
        raise UserError(
            f"granularity must be 'blocks', 'layers' or a list of names, got {granularity!r}"
        )
    if not units:
        raise UserError("the model has no parameters to randomise")
    return units[::-1]


@torch.no_grad()
def reinitialize(module: nn.Module, init: str = "paper", seed: int = 0) -> None:
    """Randomise ``module`` in place: ``"paper"`` = every parameter ~ N(0, 0.1), ``"default"`` =
    ``reset_parameters()`` of each sub-module that has one (seeded with ``seed``)."""
    if init == "paper":
        g = torch.Generator().manual_seed(int(seed))
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.1)
    elif init == "default":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for m in module.modules():
                if callable(getattr(m, "reset_parameters", None)):
                    m.reset_parameters()
    else:
        raise UserError(f"init must be 'paper' or 'default', got {init!r}")


def reduce_maps(maps: torch.Tensor, size: tuple[int, int] | None = None) -> np.ndarray:
    """(B, C, H, W) -> (B, H, W) float64: per pixel the channel value of largest |.|, sign kept,
    divided by each map's max |.| (an all-zero map stays zero). Resized bilinearly to ``size``."""
    m = maps.detach().float()
    if m.ndim == 3:
        m = m.unsqueeze(1)
    if size is not None and tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False)
    idx = m.abs().argmax(dim=1, keepdim=True)
    r = m.gather(1, idx).squeeze(1)
    scale = r.flatten(1).abs().amax(1).clamp_min(1e-30).view(-1, 1, 1)
    return (r / scale).double().numpy()


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1), np.nan)


def _hog(img: np.ndarray, cell: int) -> np.ndarray:
    from skimage.feature import hog

    cells = (img.shape[0] // cell, img.shape[1] // cell)
    block = (min(2, cells[0]), min(2, cells[1]))
    return hog(
        img,
        orientations=9,
        pixels_per_cell=(cell, cell),
        cells_per_block=block,
        feature_vector=True,
    )


def similarity(
    a: np.ndarray, b: np.ndarray, measures: Sequence[str] = MEASURES
) -> dict[str, np.ndarray]:
    """Per-image similarity of 2-D maps ``a``, ``b`` (B, H, W) from :func:`reduce_maps`.

    Returns ``{measure: (B,) float}``; NaN where a map is constant (a correlation is undefined).
    """
    from scipy.stats import rankdata

    bsz, h, w = a.shape
    fa, fb = a.reshape(bsz, -1), b.reshape(bsz, -1)
    out: dict[str, np.ndarray] = {}
    for m in measures:
        if m == "spearman":
            out[m] = _rowwise_pearson(rankdata(fa, axis=1), rankdata(fb, axis=1))
        elif m == "spearman_abs":
            out[m] = _rowwise_pearson(rankdata(np.abs(fa), axis=1), rankdata(np.abs(fb), axis=1))
        elif m == "ssim":
            from skimage.metrics import structural_similarity

            win = min(5, h, w) if min(h, w) >= 3 else None
            if win is None:
                raise UserError("SSIM needs maps of at least 3 x 3 pixels")
            win -= 1 - win % 2  # odd
            out[m] = np.array(
                [
                    structural_similarity(np.abs(x), np.abs(y), win_size=win, data_range=1.0)
                    for x, y in zip(a, b)
                ]
            )
        elif m == "hog":
            cell = min(16, max(1, min(h, w) // 2))
            ha = np.stack([_hog(np.abs(x), cell) for x in a])
            hb = np.stack([_hog(np.abs(y), cell) for y in b])
            out[m] = _rowwise_pearson(ha, hb)
        else:
            raise UserError(f"unknown similarity measure {m!r}; choose from {MEASURES}")
    return out


def _maps(model, x, targets, spec, batch_size) -> np.ndarray:
    chunks = [m for _, m in explain_in_batches(model, x, targets, spec, batch_size=batch_size)]
    return reduce_maps(torch.cat(chunks), size=tuple(x.shape[-2:]))


def sanity_check(
    model: nn.Module,
    inputs: torch.Tensor,
    methods,
    *,
    mode: str = "cascading",
    init: str = "paper",
    granularity="blocks",
    measures: Sequence[str] = MEASURES,
    targets=None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> ResultTable:
    """Run the randomisation check; one row per method x step.

    ``model``: an ``nn.Module`` (left untouched; copies are randomised); ``inputs`` (N, C, H, W);
    ``methods``: names / callables (see :func:`~._methods.resolve_methods`; pathway methods default
    to sparsity 70, the paper's setting here); ``mode``: ``"cascading"`` or ``"independent"``;
    ``init``: ``"paper"`` or ``"default"``; ``granularity``: see :func:`randomization_units`.

    Rows: ``method``, ``mode``, ``init``, ``step`` (0 = the untouched copy, then 1, 2, ...),
    ``layer`` (the unit randomised at this step; ``"original"`` at step 0), then for each measure
    its mean over images and ``<measure>_std``, and ``n``. ``summary[method]``: the measures after
    the first step and after the last.
    """
    if not isinstance(model, nn.Module):
        raise UserError("the sanity check randomises parameters: give a torch.nn.Module")
    if mode not in ("cascading", "independent"):
        raise UserError(f"mode must be 'cascading' or 'independent', got {mode!r}")
    if init not in ("paper", "default"):
        raise UserError(f"init must be 'paper' or 'default', got {init!r}")
    x = torch.as_tensor(inputs)
    if x.ndim != 4 or not x.is_floating_point():
        raise UserError(f"inputs must be a float tensor (N, C, H, W), got {tuple(x.shape)}")
    specs = resolve_methods(methods, pathway_defaults={"sparsity": 70.0})
    if any(s.is_random_ranking for s in specs):
        raise UserError("'random_ranking' has no maps to randomise; use it in ROAR / perturbation")
    units = randomization_units(model, granularity)
    if targets is None:
        t = predict(model, x, batch_size).argmax(1)
    else:
        t = torch.as_tensor(targets).long().reshape(-1)
        if t.numel() == 1:
            t = t.expand(x.shape[0]).clone()
    if t.shape[0] != x.shape[0]:
        raise UserError(f"targets has {t.shape[0]} entries for {x.shape[0]} inputs")

    work = copy.deepcopy(model).eval()
    original_state = copy.deepcopy(work.state_dict())
    reference = {s.label: _maps(work, x, t, s, batch_size) for s in specs}
    rows: list[dict] = []

    def record(step: int, layer: str, net: nn.Module) -> None:
        for s in specs:
            sims = similarity(reference[s.label], _maps(net, x, t, s, batch_size), measures)
            row = {"method": s.label, "mode": mode, "init": init, "step": step, "layer": layer}
            for m in measures:
                v = sims[m]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    row[m] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                    row[f"{m}_std"] = float(np.nanstd(v)) if np.isfinite(v).any() else float("nan")
            row["n"] = int(np.isfinite(sims[measures[0]]).sum()) if measures else len(x)
            rows.append(row)

    steps = [(0, "original")] + list(enumerate(units, start=1))
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"sanity {mode}", unit="step", leave=False)
    modules = dict(work.named_modules())
    for step, unit in steps:
        if step > 0:
            if mode == "independent":
                work.load_state_dict(original_state)
            reinitialize(modules[unit], init, seed=seed + step)
        record(step, unit or "(model)", work)
    summary = {}
    for s in specs:
        mine = [r for r in rows if r["method"] == s.label]
        summary[s.label] = {
            "first_step": {m: mine[1][m] for m in measures} if len(mine) > 1 else {},
            "last_step": {m: mine[-1][m] for m in measures},
            "first_layer": mine[1]["layer"] if len(mine) > 1 else None,
        }
    meta = {
        **PROTOCOL.to_dict(),
        "settings": {
            "mode": mode,
            "init": init,
            "granularity": granularity if isinstance(granularity, str) else list(granularity),
            "units_top_down": units,
            "measures": list(measures),
            "targets": "predicted class of the original model" if targets is None else "given",
            "seed": seed,
            "n_images": int(x.shape[0]),
        },
        "methods": [s.describe() for s in specs],
    }
    return ResultTable(rows, summary, meta)

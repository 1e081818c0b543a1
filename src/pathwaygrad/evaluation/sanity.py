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
  divided by the image's max |map|): ``spearman`` (rank correlation of the signed maps: the
  paper's convention), ``spearman_abs`` (of |map|), ``ssim`` (scikit-image, window 5, on |map| in
  [0, 1]) and ``hog`` (Pearson correlation of scikit-image HOG features of |map|, 16 x 16 pixel
  cells, or half the image side when smaller); and of the full maps as the methods return them
  (every channel): ``spearman_abs_full`` (rank correlation of |map| over all channels and pixels:
  Quantus's ``MPRT`` default, ``abs=True`` with ``correlation_spearman`` on the flattened map).
  Lower similarity after randomisation = the method passes. The two conventions can disagree:
  signed 2-D Spearman falls to about 0 for Gradient and pathway gradient after the top layer,
  while the absolute full-map Spearman stays near 0.4-0.5 (the magnitude pattern survives).
- ``seeds``: the randomisation is a random draw, so run several (``seeds=range(5)``) and read the
  spread with :func:`summarize_seeds` (mean, sd, min, max over seeds per method and step). The
  unit randomised at step ``k`` with seed ``s`` is drawn from seed ``s * 2**20 + k``.

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
    "DEFAULT_INIT",
    "MEASURES",
    "PROTOCOL",
    "randomization_units",
    "reduce_maps",
    "reinitialize",
    "sanity_check",
    "merge_seeds",
    "similarity",
    "summarize_seeds",
]

PROTOCOL = ProtocolInfo(
    name="sanity",
    summary="Randomise the model layer by layer; similarity of each map to the original map.",
    needs=("model", "inputs (N, C, H, W)", "methods"),
    scores={m: LOWER for m in ("spearman", "spearman_abs", "ssim", "hog", "spearman_abs_full")},
    reference="Adebayo et al. NeurIPS 2018; Khakzar et al. CVPR 2021 sec. 4.1",
)
MEASURES = ("spearman", "spearman_abs", "ssim", "hog", "spearman_abs_full")
#: Measures of the full (C, H, W) maps; the others compare the 2-D maps of :func:`reduce_maps`.
FULL_MAP_MEASURES = ("spearman_abs_full",)
#: The re-initialisation of the paper (section 3.4: every parameter from N(0, 0.1)): the default
#: of :func:`sanity_check`, of ``pathwaygrad evaluate sanity`` and the reproduction's headline.
DEFAULT_INIT = "paper"
_SEED_STRIDE = 2**20  # draw of (seed, step): seed * stride + step (seed 0: the step number)
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
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
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

    ``spearman_abs_full`` compares |a| and |b| flattened per image, whatever their shape: give it
    the full (B, C, H, W) maps (Quantus's convention). Returns ``{measure: (B,) float}``; NaN where
    a map is constant (a correlation is undefined).
    """
    from scipy.stats import rankdata

    bsz, h, w = a.shape[0], a.shape[-2], a.shape[-1]
    fa, fb = a.reshape(bsz, -1), b.reshape(bsz, -1)
    out: dict[str, np.ndarray] = {}
    for m in measures:
        if m == "spearman":
            out[m] = _rowwise_pearson(rankdata(fa, axis=1), rankdata(fb, axis=1))
        elif m in ("spearman_abs", "spearman_abs_full"):
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


def _maps(model, x, targets, spec, batch_size) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D maps of :func:`reduce_maps` and the full maps (float64, as returned)."""
    chunks = [m for _, m in explain_in_batches(model, x, targets, spec, batch_size=batch_size)]
    full = torch.cat(chunks).detach().float()
    return reduce_maps(full, size=tuple(x.shape[-2:])), full.double().numpy()


def _similarities(ref, new, measures: Sequence[str]) -> dict[str, np.ndarray]:
    flat = [m for m in measures if m not in FULL_MAP_MEASURES]
    full = [m for m in measures if m in FULL_MAP_MEASURES]
    sims = similarity(ref[0], new[0], flat) if flat else {}
    if full:
        sims.update(similarity(ref[1], new[1], full))
    return {m: sims[m] for m in measures}


def sanity_check(
    model: nn.Module,
    inputs: torch.Tensor,
    methods,
    *,
    mode: str = "cascading",
    init: str = DEFAULT_INIT,
    granularity="blocks",
    measures: Sequence[str] = MEASURES,
    targets=None,
    batch_size: int = 64,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> ResultTable:
    """Run the randomisation check; one row per method x step.

    ``model``: an ``nn.Module`` (left untouched; copies are randomised); ``inputs`` (N, C, H, W);
    ``methods``: names / callables (see :func:`~._methods.resolve_methods`; pathway methods default
    to sparsity 70, the paper's setting here); ``mode``: ``"cascading"`` or ``"independent"``;
    ``init``: ``"paper"`` (default, the paper's N(0, 0.1)) or ``"default"`` (each layer's own
    initialiser, as Quantus); ``granularity``: see :func:`randomization_units`; ``seeds``: the
    randomisation draws to run (default ``[seed]``); the original maps are computed once.

    Rows: ``method``, ``mode``, ``init``, ``seed``, ``step`` (0 = the untouched copy, then 1, 2,
    ...), ``layer`` (the unit randomised at this step; ``"original"`` at step 0), then for each
    measure its mean over images and ``<measure>_std`` (over images), and ``n``.
    ``summary[method]``: the measures after the first step and after the last, as the mean over
    seeds, with ``first_step_spread`` / ``last_step_spread`` (see :func:`summarize_seeds`).
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
    draws = [int(seed)] if seeds is None else [int(s) for s in seeds]
    if not draws or len(set(draws)) != len(draws) or min(draws) < 0:
        raise UserError(f"seeds must be distinct integers >= 0, got {seeds!r}")
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

    def record(draw: int, step: int, layer: str, net: nn.Module) -> None:
        for s in specs:
            sims = _similarities(reference[s.label], _maps(net, x, t, s, batch_size), measures)
            row = {
                "method": s.label,
                "mode": mode,
                "init": init,
                "seed": draw,
                "step": step,
                "layer": layer,
            }
            for m in measures:
                v = sims[m]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    row[m] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                    row[f"{m}_std"] = float(np.nanstd(v)) if np.isfinite(v).any() else float("nan")
            row["n"] = int(np.isfinite(sims[measures[0]]).sum()) if measures else len(x)
            rows.append(row)

    # step 0 (the untouched copy) is the same model for every draw: measured once, one row per draw
    record(draws[0], 0, "original", work)
    originals = list(rows)
    for draw in draws[1:]:
        rows.extend({**r, "seed": draw} for r in originals)
    steps = [(d, k, u) for d in draws for k, u in enumerate(units, start=1)]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"sanity {mode}", unit="step", leave=False)
    modules = dict(work.named_modules())
    for draw, step, unit in steps:
        if mode == "independent" or step == 1:
            work.load_state_dict(original_state)
        reinitialize(modules[unit], init, seed=draw * _SEED_STRIDE + step)
        record(draw, step, unit or "(model)", work)
    summary = _summary(rows, [s.label for s in specs], measures, len(units))
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
            "seeds": draws,
            "n_images": int(x.shape[0]),
        },
        "methods": [s.describe() for s in specs],
    }
    rows.sort(key=lambda r: (r["seed"], r["step"]))  # stable: methods keep their order
    return ResultTable(rows, summary, meta)


def _summary(rows: list[dict], labels: list[str], measures: Sequence[str], last: int) -> dict:
    spread = summarize_seeds(rows, measures)
    draws = sorted({int(r["seed"]) for r in rows})
    summary = {}
    for label in labels:
        mine = {r["step"]: r for r in spread if r["method"] == label}
        summary[label] = {
            "first_step": {m: mine[1][m] for m in measures} if 1 in mine else {},
            "last_step": {m: mine[last][m] for m in measures},
            "first_layer": mine[1]["layer"] if 1 in mine else None,
            "first_step_spread": _spread_of(mine.get(1), measures),
            "last_step_spread": _spread_of(mine.get(last), measures),
            "seeds": draws,
        }
    return summary


def merge_seeds(tables: Sequence[ResultTable]) -> ResultTable:
    """One table from :func:`sanity_check` runs of the same settings with other ``seeds`` (e.g.
    one run per seed, kept as it finishes): the rows of all, the summary over all seeds. Equal
    to one run with all the seeds."""
    if not tables:
        raise UserError("merge_seeds needs at least one table")
    settings = dict(tables[0].meta["settings"])
    rows = [dict(r) for t in tables for r in t]
    seeds = [s for t in tables for s in {int(r["seed"]) for r in t}]
    labels = list(dict.fromkeys(r["method"] for r in rows))
    if len(set(seeds)) != len(seeds):
        raise UserError(f"merge_seeds: a seed appears in two tables ({sorted(seeds)})")
    rows.sort(key=lambda r: (r["seed"], r["step"]))
    measures = settings["measures"]
    summary = _summary(rows, labels, measures, len(settings["units_top_down"]))
    settings["seeds"] = sorted({int(r["seed"]) for r in rows})
    return ResultTable(rows, summary, {**tables[0].meta, "settings": settings})


def _spread_of(row: dict | None, measures: Sequence[str]) -> dict:
    if row is None:
        return {}
    keys = ("sd", "min", "max")
    return {m: {k: row[f"{m}_{k}"] for k in keys} for m in measures}


def summarize_seeds(rows, measures: Sequence[str] = MEASURES) -> list[dict]:
    """Spread over seeds: one row per method x step (x mode x init) with, per measure, the mean
    over seeds of the per-seed mean over images, ``<measure>_sd`` (sample sd over seeds, 0 for
    one seed), ``<measure>_min``, ``<measure>_max`` and ``<measure>_std`` (= the sd, so the row
    plots with :func:`pathwaygrad.evaluation.plots.plot_sanity`); and ``seeds`` (how many).

    ``rows``: the rows of :func:`sanity_check` (a :class:`ResultTable` or a list of dicts, e.g.
    read back from ``results.csv``; a missing ``seed`` column counts as one seed).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["method"], r.get("mode"), r.get("init"), int(r["step"]))
        groups.setdefault(key, []).append(r)
    out = []
    for (method, mode, init, step), mine in groups.items():
        row: dict = {
            "method": method,
            "mode": mode,
            "init": init,
            "step": step,
            "layer": mine[0]["layer"],
            "seeds": len(mine),
        }
        for m in measures:
            v = np.array([float(r[m]) for r in mine if r.get(m) not in (None, "")], dtype=float)
            v = v[np.isfinite(v)]
            if v.size == 0:
                mean = sd = lo = hi = float("nan")
            else:
                mean, lo, hi = float(v.mean()), float(v.min()), float(v.max())
                sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
            row.update({m: mean, f"{m}_sd": sd, f"{m}_min": lo, f"{m}_max": hi, f"{m}_std": sd})
        out.append(row)
    return out

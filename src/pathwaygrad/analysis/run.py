"""Everything ``pathwaygrad analyze`` does, as library functions: settings, one resumable pass.

:func:`run_analysis` is the Python equivalent of the command::

    from pathwaygrad.analysis import run_analysis
    summaries = run_analysis("overlap", model, data, "out", preset="quick")

It resolves the settings (:func:`analysis_config`: the preset of :data:`pathwaygrad.presets.ANALYSIS`,
overridden by explicit arguments; every method and option checked before any work), opens the
output folder as a run (:func:`pathwaygrad.runs.open_run`: ``manifest.json``; another run's results
are never replaced without ``overwrite``), then makes one pass over the data: each batch's pathways
are selected once and handed to every analysis asked for.

**Resumable.** After each batch its per-example numbers are saved atomically in
``<out>/partial/batch_NNNNN.pt``. A rerun with the same settings (same methods, options,
sparsities, model weights and data) skips every saved batch whose inputs are unchanged (their
hash is stored with them), so a killed run loses at most the batch in progress, and the tables
equal those of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pathwaygrad.analysis import plots
from pathwaygrad.analysis._dataset import iter_batches
from pathwaygrad.analysis._tables import write_csv
from pathwaygrad.analysis.fidelity import FidelityResult, fidelity_records
from pathwaygrad.analysis.linearity import LinearityResult, linearity_records, prepare
from pathwaygrad.analysis.overlap import OverlapResult, overlap_records
from pathwaygrad.analysis.pathways import compute_pathways, pathway_specs, subset
from pathwaygrad.errors import UserError
from pathwaygrad.specs import MethodSpec

__all__ = [
    "ANALYSES",
    "KINDS",
    "AnalysisConfig",
    "analysis_config",
    "load_data",
    "model_fingerprint",
    "run_analysis",
    "run_config",
]

ANALYSES = ("overlap", "fidelity", "linearity", "decode")
KINDS = (*ANALYSES, "all")
PARTIAL = "partial"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AnalysisConfig:
    """What to analyse and how (built by :func:`analysis_config`)."""

    analyses: tuple[str, ...]
    specs: list[MethodSpec]
    sparsities: list[float]
    n_images: int
    batch_size: int = 50
    activations: tuple[str, ...] | None = None
    linearity_labels: list[str] = field(default_factory=list)
    linearity_sparsities: list[float] = field(default_factory=list)
    linearity_images: int = 20
    linearity_options: dict = field(default_factory=dict)
    decode_sparsity: float = 90.0
    decode_images: int = 3
    decode_options: dict = field(default_factory=dict)
    mean: tuple[float, ...] = _IMAGENET_MEAN
    std: tuple[float, ...] = _IMAGENET_STD
    seed: int = 0
    preset: str = "paper"
    notes: list[str] = field(default_factory=list)

    def settings(self) -> dict:
        """JSON-ready: everything that changes the results (the run folder's settings)."""
        lin = {k: (str(v) if k == "dtype" else v) for k, v in self.linearity_options.items()}
        return {
            "analyses": list(self.analyses),
            "methods": [s.describe() for s in self.specs],
            "sparsities": self.sparsities,
            "n_images": self.n_images,
            "batch_size": self.batch_size,
            "activations": None if self.activations is None else list(self.activations),
            "linearity": {
                "methods": self.linearity_labels,
                "sparsities": self.linearity_sparsities,
                "images": self.linearity_images,
                **lin,
            },
            "decode": {
                "sparsity": self.decode_sparsity,
                "images": self.decode_images,
                **{k: v for k, v in self.decode_options.items() if k not in ("mean", "std")},
            },
            "mean": list(self.mean),
            "std": list(self.std),
            "seed": self.seed,
            "preset": self.preset,
        }


def _floats(values: Any, name: str) -> list[float]:
    if isinstance(values, str):
        try:
            return [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"{name} takes comma-separated numbers, got {values!r}") from None
    if isinstance(values, int | float):
        return [float(values)]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise UserError(f"{name} takes numbers, got {values!r}") from None


def _sparsities(values: Any, name: str) -> list[float]:
    vals = _floats(values, name)
    if not vals:
        raise UserError(f"{name} is empty")
    for v in vals:
        if isinstance(v, bool) or not 0 <= v < 100:
            raise UserError(f"{name} values are percent pruned in [0, 100), got {v:g}")
    return list(dict.fromkeys(vals))


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise UserError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def analysis_config(
    kind: str,
    *,
    methods: Any = None,
    sparsities: Any = None,
    preset: str = "paper",
    n_images: int | None = None,
    batch_size: int = 50,
    activations: Any = None,
    dgr_iterations: int | None = None,
    dgr_lr: float | None = None,
    greedy_step: float | None = None,
    intgrad_steps: int = 10,
    linearity_methods: Any = None,
    linearity_sparsities: Any = None,
    linearity_images: int | None = None,
    directions: int | None = None,
    radii: Any = (0.001, 0.01, 0.1, 1.0),
    rtol: float | None = None,
    float32: bool = False,
    decode_sparsity: float | None = None,
    decode_images: int | None = None,
    decode_steps: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int = 0,
) -> AnalysisConfig:
    """The settings of an analysis run: ``preset`` (``"quick"`` or ``"paper"``, see
    :data:`pathwaygrad.presets.ANALYSIS`) overridden by every argument given (not None).

    ``kind``: ``"overlap"``, ``"fidelity"``, ``"linearity"``, ``"decode"`` or ``"all"``.
    ``methods``: pathway methods (:mod:`pathwaygrad.specs` grammar; default the paper's six,
    linearity: :data:`pathwaygrad.presets.LINEARITY_METHODS`). Method options written in
    ``methods`` win over ``dgr_iterations`` / ``dgr_lr`` / ``greedy_step`` / ``intgrad_steps``
    (which set the preset's schedule for every DGR / Greedy / NeuronIntGrad spec).
    Everything is validated here; a problem is a one-line :class:`~pathwaygrad.errors.UserError`.
    """
    from pathwaygrad.presets import ANALYSIS, ANALYSIS_METHODS, LINEARITY_METHODS

    if kind not in KINDS:
        raise UserError(f"unknown analysis {kind!r}; choose from {', '.join(KINDS)}")
    if preset not in ANALYSIS:
        raise UserError(f"unknown preset {preset!r}; choose from {', '.join(ANALYSIS)}")
    pre = ANALYSIS[preset]
    analyses = ANALYSES if kind == "all" else (kind,)
    notes: list[str] = []

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    n_images = _positive(pick(n_images, pre.n_images), "n_images")
    batch_size = _positive(batch_size, "batch_size")
    if activations is not None:
        activations = (activations,) if isinstance(activations, str) else tuple(activations)
        if not activations:
            raise UserError("activations is empty; pass e.g. relu,gelu (or leave it out)")
    specs = pathway_specs(
        methods or (LINEARITY_METHODS if kind == "linearity" else ANALYSIS_METHODS)
    )
    if linearity_methods:
        lin_specs = pathway_specs(linearity_methods)
    elif methods:
        lin_specs = [s for s in specs if s.name in ("neuron_mct", "random", "dgr")] or specs
    else:
        lin_specs = pathway_specs(LINEARITY_METHODS)
    if "linearity" in analyses:
        known = {s.label for s in specs}
        specs += [s for s in lin_specs if s.label not in known]
    sps = _sparsities(pick(sparsities, (80.0, 90.0, 99.0)), "sparsities")
    if linearity_sparsities is not None:
        lin_sps = _sparsities(linearity_sparsities, "linearity_sparsities")
    elif kind == "linearity" and sparsities is not None:
        lin_sps = sps
    else:
        lin_sps = list(pre.linearity_sparsity) if pre.linearity_sparsity else sps
    if decode_sparsity is None:
        decode_sparsity = sps[0] if kind == "decode" and sparsities is not None else None
    dec_sp = float(pick(decode_sparsity, pre.decode_sparsity))
    _sparsities([dec_sp], "decode_sparsity")

    # The preset's schedules for every spec of these methods; options written in a spec win.
    schedule = {
        "dgr": {
            "iterations": pick(dgr_iterations, pre.dgr_iterations),
            "lr": pick(dgr_lr, pre.dgr_lr),
            "seed": seed,
        },
        "greedy": {"step": pick(greedy_step, pre.greedy_step)},
        "neuron_intgrad": {"steps": intgrad_steps},
        "random": {"seed": seed},
    }
    specs = [
        s.with_options(override=False, relabel=False, **schedule[s.name])
        if s.name in schedule
        else s
        for s in specs
    ]
    notes += method_notes(specs)
    lin_images = min(
        _positive(pick(linearity_images, pre.linearity_images), "linearity_images"), n_images
    )
    if "linearity" in analyses and lin_images < n_images:
        notes.append(f"linearity measured on the first {lin_images} of the {n_images} images")
    lin_opts = {
        "n_random": _positive(pick(directions, pre.directions), "directions"),
        "radii": _floats(radii, "radii"),
        "radius_multiples": (0.5, 2.0),
        "t_min": 1e-8,
        "t_max": 1e2,
        "rtol": float(pick(rtol, pre.rtol)),
        "seed": seed,
        "dtype": torch.float32 if float32 else torch.float64,
    }
    if "decode" in analyses and dec_sp != 98.0:
        notes.append(f"decoding at sparsity {dec_sp:g} (paper: 98)")
    mean = tuple(mean) if mean is not None else _IMAGENET_MEAN
    std = tuple(std) if std is not None else _IMAGENET_STD
    return AnalysisConfig(
        analyses=analyses,
        specs=specs,
        sparsities=sps,
        n_images=n_images,
        batch_size=batch_size,
        activations=activations,
        linearity_labels=[s.label for s in lin_specs],
        linearity_sparsities=lin_sps,
        linearity_images=lin_images,
        linearity_options=lin_opts,
        decode_sparsity=dec_sp,
        decode_images=_positive(pick(decode_images, pre.decode_images), "decode_images"),
        decode_options={
            "steps": _positive(pick(decode_steps, pre.decode_steps), "decode_steps"),
            "seed": seed,
            "mean": mean,
            "std": std,
        },
        mean=mean,
        std=std,
        seed=seed,
        preset=preset,
        notes=notes,
    )


def method_notes(specs: Sequence[MethodSpec]) -> list[str]:
    """Say where a method runs with settings other than the paper's."""
    notes = []
    for s in specs:
        kw = s.kwargs
        if s.name == "dgr":
            its, lr = kw["iterations"], kw["lr"]
            if (its, lr) != (1000, 0.01):
                same = abs(its * lr - 10.0) < 1e-9
                notes.append(
                    f"{s.display}: {its} iterations at lr {lr:g} (paper: 1000 at lr 0.01)"
                    + (
                        "; lr x iterations kept at the paper's 10 so gates travel as far"
                        if same
                        else ""
                    )
                )
        if s.name == "greedy" and float(kw["step"]) != 1.0:
            notes.append(
                f"{s.display}: about {float(kw['step']):g} percentile points pruned per "
                "iteration (paper: 1), the step adjusted to end exactly at each sparsity"
            )
        if s.name == "neuron_intgrad" and kw["steps"] != 10:
            notes.append(f"{s.display}: {kw['steps']} alpha steps (paper: 10)")
    return notes


def load_data(
    path: str | Path | None,
    *,
    split: str = "test",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: int | None = None,
) -> tuple[Any, str]:
    """The analysis data and its description: CIFAR-10 (``path`` None: the copy in ../shared; a
    ``cifar-10-batches-py`` folder, ImageFolder tree or archive) or any ImageFolder tree
    (resized to ``size``), normalised with ``mean`` / ``std``."""
    from pathwaygrad.data import find_cifar10, load_cifar10, load_image_folder

    if path is None:
        return load_cifar10(None, split, mean=mean, std=std), "CIFAR-10 (../shared/data)"
    try:
        find_cifar10(path)
    except UserError:
        return load_image_folder(path, size=size, mean=mean, std=std), f"image folder {path}"
    return load_cifar10(path, split, mean=mean, std=std), f"CIFAR-10 {path}"


def model_fingerprint(model: Any) -> str:
    """sha256 (16 hex) of the model's class, parameter and buffer names, dtypes, shapes and values."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    if isinstance(model, torch.nn.Module):
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(_tensor_bytes(t))
    return h.hexdigest()[:16]


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def run_analysis(
    kind: str,
    model: Any,
    data: Any,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    info: dict | None = None,
    **options: Any,
) -> dict:
    """Run analysis ``kind`` (``"overlap"``, ``"fidelity"``, ``"linearity"``, ``"decode"``,
    ``"all"``) of ``model`` on ``data`` and write tables (CSV, JSON) and figures (PNG) into
    ``out``; what ``pathwaygrad analyze`` does.

    ``data``: a tensor (N, ...), an ``(inputs, labels)`` pair, a dataset (one with
    ``subset(n, seed=...)``, such as :func:`pathwaygrad.data.load_cifar10`'s, gives a seeded random
    subset of ``n_images``; others their first ``n_images``), or an iterable of batches.
    ``options``: see :func:`analysis_config`. ``info`` (e.g. the model's and data's names) goes
    into every JSON and the manifest. A rerun with the same settings resumes (module docstring);
    ``overwrite`` replaces another run's results in ``out``. Returns ``{analysis: summary}``.
    """
    cfg = analysis_config(kind, **options)
    if hasattr(data, "subset") and callable(data.subset):
        data = data.subset(cfg.n_images, seed=cfg.seed)
    return run_config(model, data, cfg, out, overwrite=overwrite, progress=progress, info=info)


def run_config(
    model: Any,
    data: Any,
    cfg: AnalysisConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    info: dict | None = None,
    manifest: bool = True,
) -> dict:
    """One resumable pass over ``data`` (used as given: no subset is drawn) for the analyses of
    ``cfg``; see :func:`run_analysis`.

    ``manifest=False`` writes into ``out`` without a run manifest (for a caller that manages the
    folder itself, e.g. a reproduction step); saved batches are still keyed by the settings.
    """
    from pathwaygrad.runs import open_run, settings_key

    info = dict(info or {})
    settings = {**cfg.settings(), "model": model_fingerprint(model), "data": info.get("data")}
    key = settings_key(settings)
    if not manifest:
        folder = _PlainFolder(Path(out))
        return _run(model, data, cfg, folder, progress, info, key)
    command = "analyze " + ("all" if len(cfg.analyses) > 1 else cfg.analyses[0])
    with open_run(out, command, settings, overwrite=overwrite, info=info) as run:
        return _run(model, data, cfg, run, progress, info, key)


class _PlainFolder:
    """The writing methods of :class:`pathwaygrad.runs.RunFolder` on a folder without manifest."""

    def __init__(self, path: Path):
        from pathwaygrad.runs import check_writable

        self.path = check_writable(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, obj: Any) -> Path:
        from pathwaygrad._io import write_json

        return write_json(self.path / name, obj)

    def save_torch(self, obj: Any, name: str) -> Path:
        from pathwaygrad._io import save_torch

        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        return save_torch(obj, self.path / name)


def _batch_hash(x: torch.Tensor) -> str:
    h = hashlib.sha256(f"{x.dtype}:{tuple(x.shape)}".encode())
    h.update(_tensor_bytes(x))
    return h.hexdigest()[:16]


def _to_torch(obj: Any) -> Any:
    """numpy arrays -> tensors, recursively (so that the batch file loads with weights_only)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_torch(v) for v in obj)
    return obj


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def _load_batch(path: Path, x: torch.Tensor, key: str) -> dict | None:
    """The saved work of this batch, or None when absent, unreadable or of other inputs."""
    from pathwaygrad._io import load_torch

    if not path.is_file():
        return None
    try:
        saved = load_torch(path, what="saved analysis batch")
    except UserError:
        return None
    if not isinstance(saved, dict) or saved.get("settings") != key:
        return None
    if saved.get("inputs") != _batch_hash(x):
        return None
    return saved


def _run(
    model: Any, data: Any, cfg: AnalysisConfig, run: Any, progress: bool, info: dict, run_key: str
) -> dict:
    from pathwaygrad.analysis.decoding import DecodeResult

    out = Path(run.path)
    want = set(cfg.analyses)
    # Only overlap and fidelity need every sparsity; the others add what they use.
    sparsities = list(cfg.sparsities) if want & {"overlap", "fidelity"} else []
    if "decode" in want and cfg.decode_sparsity not in sparsities:
        sparsities.append(cfg.decode_sparsity)
    if "linearity" in want:
        sparsities += [s for s in cfg.linearity_sparsities if s not in sparsities]
    main_sps = list(cfg.sparsities)
    ov, fi, li = [], [], []
    prep = None
    lin_opts = {k: v for k, v in cfg.linearity_options.items() if k != "dtype"}
    lin_left = cfg.linearity_images if "linearity" in want else 0
    decoded = None
    sites: list[str] | None = None
    timings = dict.fromkeys(("pathways", *ANALYSES), 0.0)
    resumed = 0
    n_total = (
        cfg.n_images
        if want & {"overlap", "fidelity"}
        else max(lin_left, cfg.decode_images if "decode" in want else 0)
    )
    batches = iter_batches(data, cfg.batch_size, n_total, progress=progress, desc="analyze")
    for number, (x, _, idx) in enumerate(batches):
        first = number == 0
        k_lin = min(lin_left, len(x))
        lin_left -= k_lin
        path = out / PARTIAL / f"batch_{number:05d}.pt"
        saved = _load_batch(path, x, run_key)
        if saved is not None:
            resumed += 1
            rec = _to_numpy(saved["records"])
            sites = saved["sites"]
            for stage, t in saved["timings"].items():
                timings[stage] += t
        else:
            rec, sites, spent = _analyse_batch(
                model,
                x,
                idx,
                cfg,
                want,
                sparsities,
                main_sps,
                k_lin,
                first,
                prep,
                lin_opts,
                progress,
            )
            prep = spent.pop("prep")
            for stage, t in spent.items():
                timings[stage] += t
            payload = {
                "settings": run_key,
                "inputs": _batch_hash(x),
                "index": torch.as_tensor(idx),
                "sites": sites,
                "records": _to_torch(rec),
                "timings": spent,
            }
            run.save_torch(payload, f"{PARTIAL}/batch_{number:05d}.pt")
        if "overlap" in rec:
            ov.append(rec["overlap"])
        if "fidelity" in rec:
            fi.append(rec["fidelity"])
        if "linearity" in rec:
            li.append(rec["linearity"])
        if "decode" in rec:
            d = rec["decode"]
            decoded = (
                x[: d["n"]],
                d,
                {
                    **{
                        part: {
                            k: DecodeResult(*(torch.as_tensor(a) for a in v))
                            for k, v in d[part].items()
                        }
                        for part in ("class", "neuron")
                    },
                    "neuron_index": {
                        k: (int(c), torch.as_tensor(i)) for k, (c, i) in d["neuron_index"].items()
                    },
                },
            )
    if sites is None:
        raise UserError("the data holds no images")
    config = {
        "methods": [
            {"label": s.label, "display": s.display, "method": s.name, "options": s.kwargs}
            for s in cfg.specs
        ],
        "sparsities": cfg.sparsities,
        "n_images": cfg.n_images,
        "activations": None if cfg.activations is None else list(cfg.activations),
        "seed": cfg.seed,
        "preset": cfg.preset,
        "notes": list(cfg.notes),
        "linearity": {k: (str(v) if k == "dtype" else v) for k, v in cfg.linearity_options.items()},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "batches_resumed": resumed,
        **info,
    }
    summaries = {}
    if ov:
        overlap = OverlapResult.from_batches(ov, cfg.specs, sites, main_sps)
        summaries["overlap"] = write_overlap(overlap, run, config)
    if fi:
        fid = FidelityResult.from_batches(fi, cfg.specs, main_sps)
        summaries["fidelity"] = write_fidelity(fid, run, config)
    if li:
        settings = dict(lin_opts, dtype=str(cfg.linearity_options["dtype"]))
        res = LinearityResult.from_batches(
            li, lin_opts.get("radii", ()), lin_opts.get("radius_multiples", ()), settings
        )
        summaries["linearity"] = write_linearity(res, run, config)
    if decoded is not None:
        summaries["decode"] = write_decode(decoded, cfg, run, config, sites)
    return summaries


def _analyse_batch(
    model: Any,
    x: torch.Tensor,
    idx: np.ndarray,
    cfg: AnalysisConfig,
    want: set[str],
    sparsities: list[float],
    main_sps: list[float],
    k_lin: int,
    first: bool,
    prep: Any,
    lin_opts: dict,
    progress: bool,
) -> tuple[dict, list[str], dict]:
    """The per-example numbers of one batch for every analysis asked for."""
    from pathwaygrad.analysis.decoding import decode_pathways

    spent = dict.fromkeys(("pathways", *ANALYSES), 0.0)
    rec: dict = {}
    t = time.perf_counter()
    ps = compute_pathways(
        model,
        x,
        cfg.specs,
        sparsities,
        activations=cfg.activations,
        keep_scores=first and "decode" in want,
        progress=progress,
    )
    spent["pathways"] += time.perf_counter() - t
    if "overlap" in want:
        t = time.perf_counter()
        rec["overlap"] = overlap_records(subset(ps, len(x), sparsities=main_sps), idx)
        spent["overlap"] += time.perf_counter() - t
    if "fidelity" in want:
        t = time.perf_counter()
        rec["fidelity"] = fidelity_records(model, x, subset(ps, len(x), sparsities=main_sps), idx)
        spent["fidelity"] += time.perf_counter() - t
    if k_lin > 0:
        t = time.perf_counter()
        if prep is None:
            prep = prepare(
                model, cfg.linearity_options.get("dtype", torch.float64), ps.dead.activations
            )
        sub = subset(ps, k_lin, cfg.linearity_labels, cfg.linearity_sparsities)
        rec["linearity"] = linearity_records(prep, x[:k_lin], sub, idx[:k_lin], **lin_opts)
        spent["linearity"] += time.perf_counter() - t
    if first and "decode" in want:
        t = time.perf_counter()
        k = min(cfg.decode_images, len(x))
        sub = subset(ps, k, sparsities=[cfg.decode_sparsity])
        dec = decode_pathways(model, x[:k], sub, cfg.decode_sparsity, **cfg.decode_options)
        rec["decode"] = {
            "n": k,
            "labels": [s.label for s in sub.specs],
            "display": [s.display for s in sub.specs],
            "targets": sub.targets.cpu().numpy(),
            "real_sparsity": {
                lab: sub.pathways[(lab, cfg.decode_sparsity)].sparsity.cpu().numpy()
                for lab in [s.label for s in sub.specs]
            },
            "neuron_index": {
                lab: (int(c), i.cpu().numpy()) for lab, (c, i) in dec["neuron_index"].items()
            },
            **{
                part: {
                    k2: (v.images.detach().cpu(), v.start.detach().cpu(), v.end.detach().cpu())
                    for k2, v in dec[part].items()
                }
                for part in ("class", "neuron")
            },
        }
        spent["decode"] += time.perf_counter() - t
    spent["prep"] = prep
    return rec, list(ps.sites), spent


def write_overlap(res: OverlapResult, run: Any, config: dict) -> dict:
    """Write ``overlap.json``, the overlap CSV tables and figures into the run folder."""
    out = Path(run.path)
    summary = {"config": config, **res.summary()}
    run.write_json("overlap.json", summary)
    jac, dead, layer, per = [], [], [], []
    for s in res.sparsities:
        jm, js = res.mean("jaccard", s), res.std("jaccard", s)
        dm, dsd = res.mean("dead", s), res.std("dead", s)
        sm, ssd = res.mean("sparsity", s), res.std("sparsity", s)
        for i, a in enumerate(res.labels):
            dead.append(
                {
                    "sparsity": s,
                    "method": a,
                    "display": res.display[i],
                    "dead_share_mean": dm[i],
                    "dead_share_std": dsd[i],
                    "real_sparsity_mean": sm[i],
                    "real_sparsity_std": ssd[i],
                }
            )
            for j, b in enumerate(res.labels):
                if j > i:
                    jac.append(
                        {
                            "sparsity": s,
                            "method_a": a,
                            "method_b": b,
                            "jaccard_mean": jm[i, j],
                            "jaccard_std": js[i, j],
                        }
                    )
        ld, lj, ls = (
            res.mean("layer_dead", s),
            res.mean("layer_jaccard", s),
            res.mean("layer_sparsity", s),
        )
        assert res.dead_fraction is not None
        net_dead = np.nanmean(res.dead_fraction, axis=0)
        for c, site in enumerate(res.sites):
            for i, a in enumerate(res.labels):
                row = {
                    "sparsity": s,
                    "call": c,
                    "site": site,
                    "method": a,
                    "network_dead_fraction": net_dead[c],
                    "dead_share_mean": ld[c, i],
                    "real_sparsity_mean": ls[c, i],
                }
                for j, b in enumerate(res.labels):
                    if j != i:
                        row[f"jaccard_{b}"] = lj[c, i, j]
                layer.append(row)
        for n, ex in enumerate(res.index):
            for i, a in enumerate(res.labels):
                row = {
                    "example": int(ex),
                    "sparsity": s,
                    "method": a,
                    "real_sparsity": res.sparsity[s][n, i],
                    "dead_share": res.dead[s][n, i],
                }
                for j, b in enumerate(res.labels):
                    if j != i:
                        row[f"jaccard_{b}"] = res.jaccard[s][n, i, j]
                per.append(row)
    write_csv(jac, out / "overlap_jaccard.csv")
    write_csv(dead, out / "overlap_dead.csv")
    write_csv(layer, out / "overlap_layerwise.csv")
    write_csv(per, out / "overlap_per_example.csv")
    plots.jaccard_heatmaps(res, out / "overlap_jaccard.png")
    plots.layerwise_curves(res, out / "overlap_layerwise.png")
    return summary


def write_fidelity(res: FidelityResult, run: Any, config: dict) -> dict:
    """Write ``fidelity.json``, its CSV tables and figure into the run folder."""
    out = Path(run.path)
    summary = {"config": config, **res.summary()}
    run.write_json("fidelity.json", summary)
    write_csv(res.rows(), out / "fidelity.csv")
    per = []
    for s in res.sparsities:
        v = res.values[s]
        for n, ex in enumerate(res.index):
            for j, lab in enumerate(res.labels):
                per.append(
                    {"example": int(ex), "sparsity": s, "method": lab, **{f: v[f][n, j] for f in v}}
                )
    write_csv(per, out / "fidelity_per_example.csv")
    plots.fidelity_curves(res, out / "fidelity.png")
    return summary


def write_linearity(res: LinearityResult, run: Any, config: dict) -> dict:
    """Write ``linearity.json``, its CSV tables and figure into the run folder."""
    out = Path(run.path)
    summary = {"config": config, **res.summary()}
    run.write_json("linearity.json", summary)
    write_csv(res.rows(), out / "linearity.csv")
    per = []
    for name in res.names:
        for s, v in res.values[name].items():
            for n, ex in enumerate(res.index):
                row = {"example": int(ex), "pathway": name, "sparsity": s}
                for f in (
                    "radius_min",
                    "radius_median",
                    "radius_grad",
                    "censored_share",
                    "zero_gradient",
                ):
                    row[f] = v[f][n]
                for j, r in enumerate(res.radii):
                    row[f"error_at_{r:g}"] = v["error"][n, j]
                per.append(row)
    write_csv(per, out / "linearity_per_example.csv")
    plots.radius_plot(res, out / "linearity.png")
    return summary


def write_decode(
    decoded: tuple, cfg: AnalysisConfig, run: Any, config: dict, sites: list[str]
) -> dict:
    """Write the decoding figure and ``decode.json`` into the run folder."""
    out = Path(run.path)
    x, d, dec = decoded
    mean = torch.tensor(cfg.mean).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std).view(1, -1, 1, 1)
    pixels = (x.cpu() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    labels, display = list(d["labels"]), list(d["display"])
    s = cfg.decode_sparsity
    name = f"decode_s{s:g}.png"
    title = (
        f"decoding through pathways at sparsity {s:g}: class logit maximised from noise "
        f"(Fourier parameterisation, jitter); bottom rows: top-scoring neuron of the last "
        f"conv call"
    )
    plots.decode_figure(pixels, dec, labels, display, out / name, title=title)
    opts = {k: v for k, v in cfg.decode_options.items()}
    summary = {
        "config": {**config, "decode_sparsity": s, "decode_options": opts},
        "figure": name,
        "targets": np.asarray(d["targets"]).tolist(),
        "class": {
            k: {"start": v.start.tolist(), "end": v.end.tolist()} for k, v in dec["class"].items()
        },
        "neuron": {
            k: {
                "call": int(d["neuron_index"][k][0]),
                "site": sites[int(d["neuron_index"][k][0])],
                "index": np.asarray(d["neuron_index"][k][1]).tolist(),
                "start": v.start.tolist(),
                "end": v.end.tolist(),
            }
            for k, v in dec["neuron"].items()
        },
        "real_sparsity": {lab: np.asarray(v).tolist() for lab, v in d["real_sparsity"].items()},
    }
    run.write_json("decode.json", summary)
    return summary

"""One pass over a dataset for several analyses, sharing the pathways of each batch.

Used by ``pathwaygrad analyze``: selecting pathways (NeuronIntGrad, DGR, Greedy) is the expensive
part, so each batch's pathways are computed once and handed to every analysis asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pathwaygrad.analysis import plots
from pathwaygrad.analysis._dataset import iter_batches
from pathwaygrad.analysis._io import write_csv, write_json
from pathwaygrad.analysis._specs import MethodSpec, compute_pathways, subset
from pathwaygrad.analysis.fidelity import FidelityResult, fidelity_records
from pathwaygrad.analysis.linearity import LinearityResult, linearity_records, prepare
from pathwaygrad.analysis.overlap import OverlapResult, overlap_records

ANALYSES = ("overlap", "fidelity", "linearity", "decode")


@dataclass
class RunConfig:
    """What to analyse and how (see ``pathwaygrad analyze --help``)."""

    analyses: tuple[str, ...]
    specs: list[MethodSpec]
    sparsities: list[float]
    n_images: int
    batch_size: int = 50
    activations: tuple[str, ...] = ("relu",)
    linearity_labels: list[str] = field(default_factory=list)
    linearity_sparsities: list[float] = field(default_factory=list)
    linearity_images: int = 20
    linearity_options: dict = field(default_factory=dict)
    decode_sparsity: float = 90.0
    decode_images: int = 3
    decode_options: dict = field(default_factory=dict)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    progress: bool = True
    meta: dict = field(default_factory=dict)


def run_analyses(model, data, cfg: RunConfig, out: str | Path) -> dict:
    """Run ``cfg.analyses`` over the first ``cfg.n_images`` of ``data``; write tables and
    figures into ``out``. Returns ``{analysis: summary dict}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    want = set(cfg.analyses)
    # Only overlap and fidelity need every --sparsity; the others add what they use.
    sparsities = list(cfg.sparsities) if want & {"overlap", "fidelity"} else []
    if "decode" in want and cfg.decode_sparsity not in sparsities:
        sparsities.append(cfg.decode_sparsity)
    for s in cfg.linearity_sparsities:
        if "linearity" in want and s not in sparsities:
            sparsities.append(s)
    main_sps = [s for s in cfg.sparsities]
    ov, fi, li = [], [], []
    prep = (
        prepare(model, cfg.linearity_options.get("dtype", torch.float64), cfg.activations)
        if "linearity" in want
        else None
    )
    lin_opts = {k: v for k, v in cfg.linearity_options.items() if k != "dtype"}
    lin_left = cfg.linearity_images if "linearity" in want else 0
    decoded = None
    sites = None
    timings = {"pathways": 0.0, "overlap": 0.0, "fidelity": 0.0, "linearity": 0.0, "decode": 0.0}
    n_total = (
        cfg.n_images
        if want & {"overlap", "fidelity"}
        else max(lin_left, cfg.decode_images if "decode" in want else 0)
    )
    for x, _, idx in iter_batches(
        data, cfg.batch_size, n_total, progress=cfg.progress, desc="analyze"
    ):
        first = idx[0] == 0
        t = time.perf_counter()
        ps = compute_pathways(
            model,
            x,
            cfg.specs,
            sparsities,
            activations=cfg.activations,
            keep_scores=first and "decode" in want,
            progress=cfg.progress,
        )
        timings["pathways"] += time.perf_counter() - t
        sites = ps.sites
        if "overlap" in want:
            t = time.perf_counter()
            ov.append(overlap_records(subset(ps, len(x), sparsities=main_sps), idx))
            timings["overlap"] += time.perf_counter() - t
        if "fidelity" in want:
            t = time.perf_counter()
            fi.append(fidelity_records(model, x, subset(ps, len(x), sparsities=main_sps), idx))
            timings["fidelity"] += time.perf_counter() - t
        if lin_left > 0:
            t = time.perf_counter()
            k = min(lin_left, len(x))
            sub = subset(ps, k, cfg.linearity_labels, cfg.linearity_sparsities)
            li.append(linearity_records(prep, x[:k], sub, idx[:k], **lin_opts))
            lin_left -= k
            timings["linearity"] += time.perf_counter() - t
        if first and "decode" in want:
            t = time.perf_counter()
            from pathwaygrad.analysis.decoding import decode_pathways

            k = min(cfg.decode_images, len(x))
            sub = subset(ps, k, sparsities=[cfg.decode_sparsity])
            decoded = (
                x[:k],
                sub,
                decode_pathways(model, x[:k], sub, cfg.decode_sparsity, **cfg.decode_options),
            )
            timings["decode"] += time.perf_counter() - t
    config = _config(cfg)
    config["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    summaries = {}
    if ov:
        res = OverlapResult.from_batches(ov, cfg.specs, sites, main_sps)
        summaries["overlap"] = write_overlap(res, out, config)
    if fi:
        res = FidelityResult.from_batches(fi, cfg.specs, main_sps)
        summaries["fidelity"] = write_fidelity(res, out, config)
    if li:
        settings = dict(lin_opts, dtype=str(prep.dtype))
        res = LinearityResult.from_batches(
            li, lin_opts.get("radii", ()), lin_opts.get("radius_multiples", ()), settings
        )
        summaries["linearity"] = write_linearity(res, out, config)
    if decoded is not None:
        summaries["decode"] = write_decode(decoded, cfg, out, config)
    return summaries


def _config(cfg: RunConfig) -> dict:
    return {
        "methods": [
            {"label": s.label, "display": s.display, "method": s.method, "options": s.kwargs}
            for s in cfg.specs
        ],
        "sparsities": cfg.sparsities,
        "n_images": cfg.n_images,
        "activations": list(cfg.activations),
        **cfg.meta,
    }


def write_overlap(res: OverlapResult, out: Path, config: dict) -> dict:
    summary = {"config": config, **res.summary()}
    write_json(summary, out / "overlap.json")
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


def write_fidelity(res: FidelityResult, out: Path, config: dict) -> dict:
    summary = {"config": config, **res.summary()}
    write_json(summary, out / "fidelity.json")
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


def write_linearity(res: LinearityResult, out: Path, config: dict) -> dict:
    summary = {"config": config, **res.summary()}
    write_json(summary, out / "linearity.json")
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


def write_decode(decoded, cfg: RunConfig, out: Path, config: dict) -> dict:
    x, ps, dec = decoded
    mean = torch.tensor(cfg.mean).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std).view(1, -1, 1, 1)
    pixels = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    labels = [s.label for s in ps.specs]
    display = [s.display for s in ps.specs]
    s = cfg.decode_sparsity
    name = f"decode_s{s:g}.png"
    title = (
        f"decoding through pathways at sparsity {s:g}: class logit maximised from noise "
        f"(Fourier parameterisation, jitter); bottom rows: top-scoring neuron of the last "
        f"conv call"
    )
    plots.decode_figure(pixels, dec, labels, display, out / name, title=title)
    summary = {
        "config": {**config, "decode_sparsity": s, "decode_options": cfg.decode_options},
        "figure": name,
        "targets": ps.targets.tolist(),
        "class": {
            k: {"start": v.start.tolist(), "end": v.end.tolist()} for k, v in dec["class"].items()
        },
        "neuron": {
            k: {
                "call": dec["neuron_index"][k][0],
                "site": ps.sites[dec["neuron_index"][k][0]],
                "index": dec["neuron_index"][k][1].tolist(),
                "start": v.start.tolist(),
                "end": v.end.tolist(),
            }
            for k, v in dec["neuron"].items()
        },
        "real_sparsity": {lab: ps.pathways[(lab, s)].sparsity.tolist() for lab in labels},
    }
    write_json(summary, out / "decode.json")
    return summary

"""Collects the steps' tables and writes ``report.md`` (with figures) and ``results.json``."""

from __future__ import annotations

import csv
import json
import os
import time
from collections import defaultdict
from pathlib import Path

from pathwaygrad._io import load_json, write_bytes, write_json, write_text
from pathwaygrad.evaluation.sanity import MEASURES, summarize_seeds
from pathwaygrad.methods import PAPER_NAMES
from pathwaygrad.reproduce import paper_numbers as P
from pathwaygrad.reproduce.claims import CONVENTIONS, base, below, judge_all

DISPLAY = {
    **PAPER_NAMES,
    "random_ranking": "Random ranking",
    "full": "Full network",
    "base": "no removal",
}


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _f(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _stats(values: list[float]) -> dict | None:
    v = [x for x in values if x is not None]
    if not v:
        return None
    mean = sum(v) / len(v)
    sd = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(v), "max": max(v), "n": len(v)}


def _overlap_tables(folder: Path) -> tuple[dict, dict, dict]:
    iou: defaultdict[float, dict] = defaultdict(dict)
    dead: defaultdict[float, dict] = defaultdict(dict)
    real: defaultdict[float, dict] = defaultdict(dict)
    for r in _rows(folder / "overlap_jaccard.csv"):
        iou[float(r["sparsity"])][(base(r["method_a"]), base(r["method_b"]))] = _f(
            r["jaccard_mean"]
        )
    for r in _rows(folder / "overlap_dead.csv"):
        s = float(r["sparsity"])
        dead[s][base(r["method"])] = _f(r["dead_share_mean"])
        real[s][base(r["method"])] = _f(r["real_sparsity_mean"])
    return dict(iou), dict(dead), dict(real)


def _draws(out: Path, first: str, res: dict) -> dict | None:
    """Spread over seeds of the numbers that depend on a random draw: seed 0 from the main
    steps, the other seeds from ``draws_<model>/``."""
    folder = out / f"draws_{first}"
    if not folder.is_dir():
        return None
    seeds = sorted(int(p.name.split("_")[-1]) for p in folder.glob("seed_*"))
    per_seed = [res["overlap"].get(first)] + [
        dict(zip(("iou", "dead", "real_sparsity"), _overlap_tables(folder / f"seed_{s}")))
        for s in seeds
    ]
    spread: dict = {}
    pairs = [("neuron_mct", "dgr_random"), ("neuron_mct", "random"), ("dgr_random", "random")]
    for sp in sorted({s for ov in per_seed if ov for s in ov["iou"]}):
        iou, dead = {}, {}
        for a, b in pairs:
            st = _stats(
                [
                    ov["iou"].get(sp, {}).get((a, b), ov["iou"].get(sp, {}).get((b, a)))
                    for ov in per_seed
                    if ov
                ]
            )
            if st:
                iou[(a, b)] = st
        for m in ("dgr_random", "random"):
            st = _stats([ov["dead"].get(sp, {}).get(m) for ov in per_seed if ov])
            if st:
                dead[m] = st
        spread[sp] = {"iou": iou, "dead": dead}
    lerf, morf = [], []
    summ = out / f"perturbation_{first}_abs" / "summary.json"
    files = ([summ] if summ.is_file() else []) + [
        folder / f"random_ranking_seed_{s}" / "summary.json" for s in seeds
    ]
    for f in files:
        if f.is_file():
            v = load_json(f)["summary"].get("random_ranking", {})
            lerf.append(v.get("lerf", {}).get("drop_at_10"))
            morf.append(v.get("morf", {}).get("drop_at_10"))
    return {
        "seeds": [0, *seeds],
        "spread": spread,
        "random_ranking": {"lerf": _stats(lerf), "morf": _stats(morf)},
    }


def collect(out: Path, models: dict, claim: dict | None = None) -> dict:
    """Read every step's tables into one dict (keys as :mod:`.claims` expects)."""
    names = list(models)
    first = names[0] if names else None
    res: dict = {"first_model": first, "overlap": {}, "claim": claim}
    for name in names:
        iou, dead, real = _overlap_tables(out / f"analysis_{name}")
        if iou or dead:
            res["overlap"][name] = {"iou": iou, "dead": dead, "real_sparsity": real}
    res["draws"] = _draws(out, first, res) if first else None
    lin = {}
    for r in _rows(out / f"analysis_{first}" / "linearity.csv"):
        lin[base(r["pathway"])] = _f(r.get("radius_median_median"))
        lin[f"{base(r['pathway'])}:min"] = _f(r.get("radius_min_median"))
        lin[f"{base(r['pathway'])}:error_0.1"] = _f(r.get("error_at_0.1"))
    res["linearity"] = {k: v for k, v in lin.items() if v is not None} or None
    fid: defaultdict[float, dict] = defaultdict(dict)
    for r in _rows(out / f"analysis_{first}" / "fidelity.csv"):
        fid[float(r["sparsity"])][base(r["method"])] = {
            k: _f(v) for k, v in r.items() if k not in ("sparsity", "method", "display")
        }
    res["fidelity"] = dict(fid) or None
    res.update(_model_results(out, first) if first else {"sanity": {}})
    res["other_models"] = {}
    for name in names[1:]:
        extra = _model_results(out, name)
        if any(extra.values()):
            res["other_models"][name] = extra
    all_rows = _rows(out / "roar_kar" / "results.csv")
    for mode in ("roar", "kar"):
        rows = [r for r in all_rows if r["protocol"] in (mode, "base")]
        if not rows:
            res[mode] = None
            continue
        accs = defaultdict(list)
        base_acc = []
        for r in rows:
            if r["protocol"] == "base":
                base_acc.append(float(r["accuracy"]))
            else:
                accs[(base(r["method"]), float(r["fraction"]))].append(float(r["accuracy"]))
        mean = {k: sum(v) / len(v) for k, v in accs.items()}
        std = {
            k: (sum((x - mean[k]) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
            for k, v in accs.items()
        }
        res[mode] = {
            "acc": mean,
            "std": std,
            "repeats": {k: len(v) for k, v in accs.items()},
            "base": sum(base_acc) / len(base_acc) if base_acc else None,
        }
    return res


def _model_results(out: Path, name: str) -> dict:
    """LeRF / MoRF, sanity and sweep tables of one model (empty when its steps did not run)."""
    res: dict = {}
    # LeRF is judged on |map| ranking ("least important" = smallest magnitude); the signed
    # max-over-channels ranking (most negative first) is reported beside it.
    for suffix, key in (("_abs", ""), ("", "_signed")):
        summary_path = out / f"perturbation_{name}{suffix}" / "summary.json"
        if summary_path.is_file():
            summ = load_json(summary_path)["summary"]
            res["lerf" + key] = {
                base(m): v["lerf"]["drop_at_10"] for m, v in summ.items() if "lerf" in v
            }
            res["lerf_area" + key] = {
                base(m): v["lerf"]["area_0_10"] for m, v in summ.items() if "lerf" in v
            }
            res["morf" + key] = {
                base(m): v["morf"]["drop_at_10"] for m, v in summ.items() if "morf" in v
            }
    res["sanity"] = {}
    for folder in sorted(out.glob(f"sanity_{name}_*")):
        rows = _rows(folder / "results.csv")
        if not rows:
            continue
        measures = [m for m in MEASURES if m in rows[0]]
        spread = summarize_seeds(rows, measures)
        steps = sorted({r["step"] for r in spread})
        t: dict = {"seeds": max(r["seeds"] for r in spread), "layers": {}, "steps": {}}
        for r in spread:
            m, k = base(r["method"]), r["step"]
            t["layers"][k] = r["layer"]
            t["steps"].setdefault(m, {})[k] = {
                ms: {
                    "mean": r[ms],
                    "sd": r[f"{ms}_sd"],
                    "min": r[f"{ms}_min"],
                    "max": r[f"{ms}_max"],
                }
                for ms in measures
            }
        first_step = 1 if len(steps) > 1 else steps[0]
        t["first"] = {
            ms: {m: v[first_step][ms] for m, v in t["steps"].items() if first_step in v}
            for ms in measures
        }
        t["last"] = {
            ms: {m: v[steps[-1]][ms] for m, v in t["steps"].items() if steps[-1] in v}
            for ms in measures
        }
        res["sanity"][rows[0]["init"]] = t
    sweep = out / f"sweep_{name}" / "sweep.json"
    res["sweep"] = load_json(sweep) if sweep.is_file() else None
    return res


# ----------------------------------------------------------------------------------- writing
def _name(m: str) -> str:
    return DISPLAY.get(m, m)


def _fmt(v, pct=False, digits=2) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}f}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {
            (" / ".join(map(str, k)) if isinstance(k, tuple) else str(k)): _jsonable(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _figure(out: Path, rel: str, lines: list[str], caption: str) -> None:
    src = out / rel
    if src.is_file():
        dest = out / "figures" / rel.replace("/", "__")
        write_bytes(dest, src.read_bytes())
        lines.append(f"![{caption}](figures/{dest.name})\n")
        lines.append(f"*{caption}*\n")


def _overlap_section(res, preset, lines, out):
    lines.append("## 3.1 Pathway analysis: overlap and dead neurons\n")
    for name, ov in res["overlap"].items():
        if 90.0 not in ov["iou"]:
            continue
        methods = [m for m in P.OVERLAP_METHODS if m in ov["dead"][90.0]]
        n = preset.analysis_images if name == res["first_model"] else preset.other_model_images
        lines.append(f"### {name}, {n} CIFAR-10 test images, sparsity 90: IoU % ours (paper)\n")
        lines.append("| | " + " | ".join(_name(m) for m in methods) + " |")
        lines.append("|---" * (len(methods) + 1) + "|")
        for i, a in enumerate(methods):
            cells = []
            for j, b in enumerate(methods):
                if j < i:
                    cells.append("")
                elif j == i:
                    cells.append("100")
                else:
                    v = ov["iou"][90.0].get((a, b), ov["iou"][90.0].get((b, a)))
                    p = P.IOU_AT_90.get((a, b), P.IOU_AT_90.get((b, a)))
                    cells.append(f"{_fmt(v, True)} ({p:.2f})" if p is not None else _fmt(v, True))
            lines.append(f"| {_name(a)} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("| dead share % at 90 | " + " | ".join(_name(m) for m in methods) + " |")
        lines.append("|---" * (len(methods) + 1) + "|")
        lines.append(
            "| ours | " + " | ".join(_fmt(ov["dead"][90.0].get(m), True) for m in methods) + " |"
        )
        lines.append(
            "| paper (VGG-16, ImageNet) | "
            + " | ".join(f"{P.DEAD_SHARE_AT_90[m]:.2f}" for m in methods)
            + " |"
        )
        lines.append(
            "| real sparsity % (ours) | "
            + " | ".join(_fmt(ov["real_sparsity"][90.0].get(m), False, 1) for m in methods)
            + " |\n"
        )
        for s in sorted(ov["iou"]):
            if s == 90.0:
                continue
            pair = ov["iou"][s].get(("neuron_intgrad", "neuron_mct"))
            lines.append(
                f"- sparsity {s:g}: IoU NeuronIntGrad-NeuronMCT {_fmt(pair, True)} %, dead shares "
                + ", ".join(f"{_name(m)} {_fmt(v, True)} %" for m, v in ov["dead"][s].items())
            )
        lines.append("")
        _figure(out, f"analysis_{name}/overlap_jaccard.png", lines, f"Jaccard matrices, {name}")
        _figure(
            out,
            f"analysis_{name}/overlap_layerwise.png",
            lines,
            f"Per-call overlap and dead share, {name}",
        )


def _heading(name: str, several: bool, lines: list[str]) -> None:
    if several:
        lines.append(f"### {name}\n")


def _sweep_section(t, name, several, lines, out) -> None:
    if not t.get("sweep"):
        return
    _heading(name, several, lines)
    lines.append("| sparsity % | real sparsity % | share of |map| in the top 10 % pixels |")
    lines.append("|---|---|---|")
    for r in t["sweep"]["rows"]:
        lines.append(
            f"| {r['sparsity']:g} | {r['real_sparsity_mean']:.1f} | {r['top10_share_mean']:.3f} |"
        )
    lines.append("")
    _figure(
        out, f"sweep_{name}/sweep.png", lines, f"NeuronMCT pathway gradient vs sparsity, {name}"
    )


def _ms(st: dict | None, digits: int = 3) -> str:
    """mean ± sd [min, max] over seeds."""
    if not st or st.get("mean") is None:
        return "-"
    return (
        f"{st['mean']:.{digits}f} ± {st['sd']:.{digits}f} "
        f"[{st['min']:.{min(digits, 2)}f}, {st['max']:.{min(digits, 2)}f}]"
    )


def _step_table(t: dict, measure: str, lines: list[str]) -> None:
    methods = sorted(t["steps"])
    lines.append("| step | layer randomised | " + " | ".join(_name(m) for m in methods) + " |")
    lines.append("|---" * (len(methods) + 2) + "|")
    for k in sorted(t["layers"]):
        cells = [_ms(t["steps"][m].get(k, {}).get(measure), 2) for m in methods]
        lines.append(f"| {k} | {t['layers'][k]} | " + " | ".join(cells) + " |")
    lines.append("")


def _verdict_line(t: dict, measure: str) -> str:
    first = t["first"].get(measure, {})
    pgs = [m for m in ("neuron_mct", "neuron_intgrad") if m in first]
    rivals = [m for m in first if m not in pgs]
    if not pgs:
        return "pathway gradient not run"
    beats = [b for b in rivals if all(below(first, p, b) for p in pgs)]
    within = [b for b in rivals if b not in beats]
    text = "pathway gradient (both methods) is below " + (
        ", ".join(_name(b) for b in sorted(beats)) if beats else "no baseline"
    )
    text += " by more than the spread"
    if within:
        text += "; not distinguishable from, or above, " + ", ".join(
            _name(b) for b in sorted(within)
        )
    return text


def _sanity_section(res, name, several, preset, lines, out) -> None:
    tables = res.get("sanity", {})
    if tables:
        _heading(name, several, lines)
    order = [i for i in preset.sanity_inits if i in tables] + [
        i for i in tables if i not in preset.sanity_inits
    ]
    for n, init in enumerate(order):
        t = tables[init]
        lines.append(
            ("**Headline**: re" if n == 0 else "Re")
            + f"-initialisation `{init}` "
            + (
                "(every weight and bias, BatchNorm included, from N(0, 0.1): the paper's, and "
                "`pathwaygrad evaluate sanity`'s default)"
                if init == "paper"
                else "(each layer's own initialiser, as Quantus's MPRT)"
            )
            + f", {preset.sanity_images} images, {t['seeds']} seeds of the randomisation. "
            "After randomising the top layer, mean ± sd over seeds [min, max]:\n"
        )
        lines.append(
            "| method | signed Spearman, 2-D maps (paper's convention) | paper | "
            "Spearman of abs. value, full 3-channel maps (Quantus default) | SSIM | "
            "signed Spearman, all layers randomised |"
        )
        lines.append("|---|---|---|---|---|---|")
        first, last = t["first"], t["last"]
        for m in sorted(t["steps"]):
            paper = P.SANITY_SPEARMAN_AFTER_FC.get(m)
            lines.append(
                f"| {_name(m)} | {_ms(first.get('spearman', {}).get(m))} | "
                f"{_fmt(paper, digits=3)} | {_ms(first.get('spearman_abs_full', {}).get(m))} | "
                f"{_ms(first.get('ssim', {}).get(m), 2)} | "
                f"{_ms(last.get('spearman', {}).get(m), 2)} |"
            )
        lines.append("")
        for measure, conv in CONVENTIONS.items():
            if measure in first:
                lines.append(f"- {conv}: {_verdict_line(t, measure)}.")
        lines.append(
            "\nBelow by more than the spread: the difference of the means exceeds the sum of the "
            "two sds over seeds.\n"
        )
        for measure, conv in CONVENTIONS.items():
            if measure in first:
                lines.append(
                    f"<details><summary>Every randomisation step, {conv}, init={init} "
                    "(mean ± sd [min, max] over seeds)</summary>\n"
                )
                _step_table(t, measure, lines)
                lines.append("</details>\n")
        _figure(
            out,
            f"sanity_{name}_{init}/sanity.png",
            lines,
            f"Sanity check, init={init}, {name}: mean ± sd over {t['seeds']} seeds",
        )


def _draws_section(res, preset, lines) -> None:
    d = res.get("draws")
    if not d:
        return
    seeds = ", ".join(map(str, d["seeds"]))
    lines.append("## Numbers that depend on a random draw: spread over seeds\n")
    lines.append(
        f"Seeds {seeds} of each random choice (the same images): Random pathways, DGR's random "
        "initialisation (init=r), the random pixel ranking. Mean ± sd [min, max]; the other "
        "tables of this report show seed 0.\n"
    )
    lines.append("| quantity | mean ± sd [min, max] |")
    lines.append("|---|---|")
    for sp, t in sorted(d["spread"].items()):
        for (a, b), st in t["iou"].items():
            lines.append(f"| IoU % {_name(a)}-{_name(b)}, sparsity {sp:g} | {_pct_ms(st)} |")
        for m, st in t["dead"].items():
            lines.append(f"| dead share % {_name(m)}, sparsity {sp:g} | {_pct_ms(st)} |")
    for k, label in (("lerf", "LeRF"), ("morf", "MoRF")):
        st = d["random_ranking"].get(k)
        if st:
            lines.append(f"| {label} drop at 10 %, random ranking | {_ms(st)} |")
    lines.append("")


def _pct_ms(st: dict) -> str:
    return (
        f"{100 * st['mean']:.2f} ± {100 * st['sd']:.2f} "
        f"[{100 * st['min']:.2f}, {100 * st['max']:.2f}]"
    )


def _lerf_section(res, name, several, preset, lines, out) -> None:
    if res.get("lerf") or res.get("lerf_signed"):
        _heading(name, several, lines)
    for key, how in (
        ("", "pixels ranked by the largest |value| over channels (judged)"),
        (
            "_signed",
            "pixels ranked by the signed maximum over channels (most negative = least important)",
        ),
    ):
        drops = res.get("lerf" + key)
        if not drops:
            continue
        lines.append(
            f"{preset.perturbation_images} test images, {how}; removed pixels set to the dataset "
            "mean; mean relative drop of the original class's probability.\n"
        )
        lines.append(
            "| method | LeRF drop at 10 % | paper | LeRF area 0-10 % | paper | MoRF drop at 10 % |"
        )
        lines.append("|---|---|---|---|---|---|")
        for m in sorted(drops, key=lambda m: drops[m]):
            lines.append(
                f"| {_name(m)} | {_fmt(drops[m], digits=3)} | {_fmt(P.LERF_DROP_AT_10.get(m), digits=3)} | "
                f"{_fmt(res['lerf_area' + key].get(m), digits=4)} | {_fmt(P.LERF_AREA_0_10.get(m), digits=4)} | "
                f"{_fmt(res['morf' + key].get(m), digits=3)} |"
            )
        lines.append("")
        suffix = "_abs" if key == "" else ""
        _figure(
            out,
            f"perturbation_{name}{suffix}/perturbation.png",
            lines,
            f"LeRF / MoRF curves ({how.split(' (')[0]}), {name}",
        )


def _roar_section(res, lines, out) -> None:
    lines.append("## 3.5 ROAR and KAR (remove / keep the top t % pixels and retrain)\n")
    claim = res.get("claim")
    if claim:
        v = claim["verdict"]
        lines.append(
            f"The ROAR verdict comes from the claim run ([claim/report.md](claim/report.md)): a "
            f"base model at {_fmt(claim['base'], True, 1)} % test accuracy, one retrain per cell. "
            f"**{v['verdict']}**: {v['reason']}.\n"
        )
        if claim["acc"]:
            lines += accuracy_table(claim, paper=True)
            lines.append(
                "\n(claim run, test accuracy %; the paper's ROAR figures in parentheses)\n"
            )
        else:
            lines.append("No retrain cell of the claim run has finished yet.\n")
        lines.append("The quick preset's own ROAR / KAR below is a protocol demonstration.\n")
    for mode in ("roar", "kar"):
        t = res.get(mode)
        if not t:
            continue
        lines.append(
            f"**{mode.upper()}**, test accuracy % (mean ± std where repeated); base model "
            f"{_fmt(t['base'], True, 1)} %"
            + (f" (paper {P.ROAR_BASE_ACCURACY})" if mode == "roar" else "")
            + (
                ". Lower is better: removing the pixels a map ranks highest should hurt most.\n"
                if mode == "roar"
                else ". Higher is better: keeping only the pixels a map ranks highest should "
                "keep the most.\n"
            )
        )
        lines += accuracy_table(t, paper=mode == "roar")
        lines.append(
            "\n(the paper's ROAR figures in parentheses)\n"
            if mode == "roar"
            else "\n(KAR keeps the top t % pixels; t = 90 % keeps almost the whole image. The "
            "paper gives no KAR figures.)\n"
        )
    _figure(out, "roar_kar/roar_kar.png", lines, "ROAR and KAR accuracy vs fraction")


def accuracy_table(
    t: dict, *, paper: bool, digits: int = 1, methods: list[str] | None = None
) -> list[str]:
    """The lines of a ROAR / KAR accuracy table, method x fraction, in % with ``digits``
    decimals (mean ± sd where a cell was repeated); with ``paper`` the paper's ROAR figure in
    parentheses. ``t``: ``{"acc": {(method, fraction): mean}, "std": ..., "repeats": ...}``;
    ``methods``: the rows in order (default: the paper's methods first, then by name)."""
    fractions = _fractions(t)
    lines = ["| method | " + " | ".join(f"t={100 * f:g} %" for f in fractions) + " |"]
    lines.append("|---" * (len(fractions) + 1) + "|")
    for m in _methods(t) if methods is None else methods:
        cells = []
        for f in fractions:
            a = t["acc"].get((m, f))
            if a is None:
                cell = "-"
            elif t.get("repeats", {}).get((m, f), 1) > 1:
                cell = f"{100 * a:.{digits}f} ± {100 * t['std'][(m, f)]:.{digits}f}"
            else:
                cell = f"{100 * a:.{digits}f}"
            ref = P.ROAR_ACCURACY.get(m)
            pct = round(100 * f)
            if paper and ref and pct in P.ROAR_FRACTIONS:
                cell += f" ({ref[P.ROAR_FRACTIONS.index(pct)]:.{digits}f})"
            cells.append(cell)
        lines.append(f"| {_name(m)} | " + " | ".join(cells) + " |")
    return lines


def _fractions(t: dict) -> list[float]:
    return sorted({f for (_, f) in t["acc"]})


def _methods(t: dict) -> list[str]:
    return sorted({m for (m, _) in t["acc"]}, key=lambda m: (m not in P.ROAR_ACCURACY, m))


def _shown(path) -> str:
    """A path as the report may show it: relative when it is inside the working folder."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return os.path.relpath(p)
    except ValueError:
        return p.name


def write_report(out, preset, models, data, records, env, elapsed, claim=None) -> dict:
    """Write ``out/report.md`` (figures copied into ``out/figures``) and ``out/results.json``.

    ``data``: the data as the user gave it (None: the shared copy); ``claim``: the ROAR table of
    a claim run (:func:`pathwaygrad.reproduce.claim.load_claim`), which then sets the ROAR
    verdict. Paths in the report are file names or relative to ``out``.
    """
    out = Path(out)
    res = collect(out, models, claim)
    verdicts = judge_all(res, tuple(preset.sanity_inits))
    command = f"pathwaygrad reproduce --preset {preset.name} --out {out.name}"
    if data and preset.name != "tiny":
        command += f" --data {_shown(data)}"
    ranking = (
        "|map|"
        if preset.retrain.rank_by == "abs"
        else "the maps' signed maximum over channels (the paper)"
    )
    lines = [
        f"# Reproduction of Khakzar et al. (CVPR 2021), preset `{preset.name}`\n",
        "Regenerate with (resumable: rerun the same command after an interruption):\n",
        "```bash",
        command,
        "```\n",
        "Models: "
        + (", ".join(f"{n} ({Path(w).name})" for n, (_, w) in models.items()) or "-")
        + ". "
        f"Data: {_shown(data) if data and preset.name != 'tiny' else 'CIFAR-10 JPEG copy in ../shared/data' if preset.name != 'tiny' else 'synthetic (tiny/data)'}. "
        f"The steps took {sum(r['seconds'] for r in records) / 60:.1f} min in all (this "
        f"invocation {elapsed / 60:.1f} min; steps finished by an earlier one are kept). "
        f"Pathway-gradient maps for LeRF and ROAR/KAR use sparsity {preset.pathway_sparsity:g} "
        f"(the paper does not state it), the sanity check {preset.sanity_sparsity:g} (as the paper). "
        f"ROAR / KAR rank pixels by {ranking}; LeRF is "
        "judged with |map| ranking and shown with both (the paper does not say). "
        f"Every random choice is seeded with {preset.seed}; the numbers that depend on a random "
        f"draw are also run with seeds {', '.join(map(str, preset.draw_seeds))} and given as "
        "mean ± sd [min, max].\n",
        "## Verdicts\n",
        "| claim | section | paper | ours | verdict | reason |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v.claim} | {v.section} | {v.paper} | {v.ours} | **{v.verdict}** | {v.reason} |"
        )
    lines.append(
        "\nThe paper's pathway analysis and sanity checks ran on ImageNet models (VGG-16, ResNet-50) "
        "that are not available offline; ours run on the pretrained CIFAR-10 ResNets, so numbers "
        "are compared for their direction, not their value.\n"
    )
    _overlap_section(res, preset, lines, out)

    lines.append("## 3.2 Pathway decoding\n")
    lines.append(
        "Feature visualisation through each method's pathway at sparsity 98 (class logit "
        "maximised from noise with the masks fixed) and the top-scoring neuron of the last "
        "convolutional call. Qualitative: not judged.\n"
    )
    if res["first_model"]:
        _figure(out, f"analysis_{res['first_model']}/decode_s98.png", lines, "Pathway decoding")

    per_model = [(res["first_model"], res), *res.get("other_models", {}).items()]
    per_model = [(n, t) for n, t in per_model if n]
    several = len(per_model) > 1
    lines.append("## 3.3 Sparsity sweep\n")
    for name, t in per_model:
        _sweep_section(t, name, several, lines, out)
    lines.append("## 3.4 Sanity checks (cascading randomisation, top layer first)\n")
    lines.append(
        "Two similarity conventions, side by side: the paper's signed Spearman rank correlation "
        "of 2-D maps (per pixel the channel value of largest magnitude), and Quantus's `MPRT` "
        "default, the Spearman correlation of absolute values over the full 3-channel maps. "
        "Lower = the map changed with the model = the method passes.\n"
    )
    for name, t in per_model:
        _sanity_section(t, name, several, preset, lines, out)
    _roar_section(res, lines, out)

    lines.append("## 3.6 LeRF and MoRF pixel perturbation\n")
    for name, t in per_model:
        _lerf_section(t, name, several, preset, lines, out)
    _draws_section(res, preset, lines)
    lines.append("## 4 Local linearity (measured)\n")
    lin = res.get("linearity")
    if lin:
        lines.append(
            f"{preset.linearity_images} images, {preset.directions} random directions plus the "
            f"gradient direction, pathways at sparsity {preset.pathway_sparsity:g}. Radius: L2 "
            "distance in (normalised) input space before the on/off pattern of the kept ReLUs "
            "changes; median over images of the per-image median (and min) over directions.\n"
        )
        lines.append("| pathway | median radius | min radius | linearisation error at 0.1 |")
        lines.append("|---|---|---|---|")
        for m in ("full", "neuron_mct", "random", "dgr_ones"):
            if m in lin:
                lines.append(
                    f"| {_name(m)} | {lin[m]:.3g} | {_fmt(lin.get(m + ':min'), digits=4)} | "
                    f"{_fmt(lin.get(m + ':error_0.1'), digits=4)} |"
                )
        lines.append("")
        _figure(out, f"analysis_{res['first_model']}/linearity.png", lines, "Radius of linearity")

    lines.append("## Deviations from the paper and from reference implementations\n")
    lines += [f"- {d}" for d in DEVIATIONS]
    lines.append("")
    lines.append("## Settings, versions, steps\n")
    lines.append("```json")
    lines.append(
        json.dumps({"preset": preset.as_dict(), "environment": env}, indent=2, default=str)
    )
    lines.append("```\n")
    lines.append("| step | seconds | what ran (library call) |")
    lines.append("|---|---|---|")
    for r in records:
        lines.append(f"| {r['key']} | {r['seconds']:.0f} | {r.get('call') or r.get('title')} |")
    write_text(out / "report.md", "\n".join(lines) + "\n")
    results = {
        "preset": preset.as_dict(),
        "environment": env,
        "models": {n: {"architecture": a, "weights": Path(w).name} for n, (a, w) in models.items()},
        "data": _shown(data) if data and preset.name != "tiny" else None,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "steps": records,
        "verdicts": [v.as_dict() for v in verdicts],
        "results": _jsonable(res),
    }
    write_json(out / "results.json", results)
    print(f"[reproduce] wrote {out / 'report.md'} and {out / 'results.json'}")
    for v in verdicts:
        print(f"  {v.verdict:>14}: {v.claim}")
    return results


#: Where pathwaygrad departs from the paper or from a reference implementation (issue 17).
DEVIATIONS = (
    "Sanity check: the headline uses the paper's re-initialisation (every parameter from "
    "N(0, 0.1)), which is also `pathwaygrad evaluate sanity`'s default; Quantus's layer "
    "initialisers (`--init default`) are shown beside it. Each randomisation is a random draw: "
    "the report gives the spread over seeds.",
    "Grad-CAM: maps are ReLU-ed (`relu_attributions=True`, as TorchRay), unlike a plain Captum "
    "`LayerGradCam` call; the un-ReLU-ed map is available as an option of the method.",
    "Greedy at sparsity s prunes the percentiles 0..s (the authors' `prune_greedy(1, s+1)`); "
    "their qualitative script calls `prune_greedy(1, s)`, and because the mask alternates "
    "between two states the parity of the last step changes the pathway (IoU 0.59-0.67 between "
    "the two); the other schedule is an option of the method.",
    "NeuronIntGrad evaluates its alpha points as one batch: scores differ from a "
    "one-point-at-a-time loop by up to 7.5e-4 (relative) in some calls.",
)

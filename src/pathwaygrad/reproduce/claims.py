"""The paper's claims, each judged from our results: holds / does not hold / inconclusive.

Every judge takes the collected tables (see :mod:`pathwaygrad.reproduce.report`) and returns a
:class:`Verdict` with the paper's figure, ours and the reason, so the report can be read claim by
claim. Thresholds of each rule are written in its docstring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pathwaygrad.reproduce import paper_numbers as P

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass
class Verdict:
    claim: str
    section: str
    paper: str
    ours: str
    verdict: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def base(label: str) -> str:
    """Method name of a result label: ``"neuron_mct(sparsity=90)"`` -> ``"neuron_mct"``."""
    label = label.replace("dgr(init=ones)", "dgr_ones").replace("dgr(init=random)", "dgr_random")
    return label.split("(")[0].split(":")[0]


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def dead_neurons(overlap: dict | None) -> Verdict:
    """Holds when the NeuronMCT and NeuronIntGrad pathways at sparsity 90 hold no dead neuron
    (share exactly 0 over every image)."""
    claim = "Contribution pathways (NeuronMCT, NeuronIntGrad) hold no dead neurons"
    paper = "dead share 0.00 % / 0.00 % (DGR init=r 66.99 %, Greedy 68.78 %, Random 59.51 %)"
    if not overlap or 90.0 not in overlap["dead"]:
        return Verdict(claim, "3.1", paper, "not run", INCONCLUSIVE, "no overlap result at 90")
    dead = overlap["dead"][90.0]
    mct, ig = dead.get("neuron_mct"), dead.get("neuron_intgrad")
    others = ", ".join(
        f"{m} {_pct(dead[m])}" for m in ("dgr_random", "greedy", "random") if m in dead
    )
    ours = f"{_pct(mct)} / {_pct(ig)} ({others})"
    if mct is None or ig is None:
        return Verdict(claim, "3.1", paper, ours, INCONCLUSIVE, "a method is missing")
    if mct == 0 and ig == 0:
        return Verdict(
            claim, "3.1", paper, ours, HOLDS,
            "no pathway of either method contains a neuron whose activation is <= 0; they score 0 "
            "and the threshold prunes them",
        )  # fmt: skip
    return Verdict(claim, "3.1", paper, ours, FAILS, "dead neurons found in a contribution pathway")


def unrelated_pathways(overlap: dict | None, draws: dict | None = None) -> Verdict:
    """Holds when, at sparsity 90, the IoU of NeuronMCT with DGR(init=r) and with Greedy is below
    half the IoU of the two contribution methods, and those pruning-objective pathways are mostly
    (> 25 %) dead neurons. Where DGR(init=r) was run with several seeds (``draws``), its IoU is
    taken at mean + sd and its dead share at mean - sd (a margin smaller than the spread is not
    a margin)."""
    claim = "The pruning objective (DGR init=r, Greedy) gives pathways unrelated to the contribution ones"
    paper = (
        "IoU NeuronIntGrad-NeuronMCT 65.91 %, NeuronMCT-DGR(r) 2.29 %, NeuronMCT-Greedy 5.26 %; "
        "dead shares 66.99 % / 68.78 %"
    )
    if not overlap or 90.0 not in overlap["iou"]:
        return Verdict(claim, "3.1", paper, "not run", INCONCLUSIVE, "no overlap result at 90")
    iou, dead = overlap["iou"][90.0], overlap["dead"][90.0]

    def get(a, b):
        return iou.get((a, b), iou.get((b, a)))

    pair = get("neuron_intgrad", "neuron_mct")
    dgr_r, greedy = get("neuron_mct", "dgr_random"), get("neuron_mct", "greedy")
    ours = (
        f"IoU NeuronIntGrad-NeuronMCT {_pct(pair)}, NeuronMCT-DGR(r) {_pct(dgr_r)}, "
        f"NeuronMCT-Greedy {_pct(greedy)}; dead shares {_pct(dead.get('dgr_random'))} / "
        f"{_pct(dead.get('greedy'))}"
    )
    if None in (pair, dgr_r, greedy):
        return Verdict(claim, "3.1", paper, ours, INCONCLUSIVE, "a method is missing")
    dgr_dead = dead.get("dgr_random", 0)
    spread = (draws or {}).get(90.0, {})
    iou_sd = spread.get("iou", {}).get(("neuron_mct", "dgr_random"))
    dead_sd = spread.get("dead", {}).get("dgr_random")
    if iou_sd:
        dgr_r = iou_sd["mean"] + iou_sd["sd"]
        ours += (
            f" (DGR(r) over {iou_sd['n']} seeds: IoU {_pct(iou_sd['mean'])} ± {_pct(iou_sd['sd'])}"
        )
        if dead_sd:
            dgr_dead = dead_sd["mean"] - dead_sd["sd"]
            ours += f", dead share {_pct(dead_sd['mean'])} ± {_pct(dead_sd['sd'])}"
        ours += ")"
    low = max(dgr_r, greedy) < 0.5 * pair
    deadish = min(dgr_dead, dead.get("greedy", 0)) > 0.25
    if low and deadish:
        return Verdict(
            claim, "3.1", paper, ours, HOLDS,
            "the pruning-objective pathways overlap the contribution ones less than half as much "
            "as the two contribution methods overlap each other, and are mostly dead neurons",
        )  # fmt: skip
    if not low and not deadish:
        return Verdict(claim, "3.1", paper, ours, FAILS, "they overlap and hold few dead neurons")
    why = "low overlap but few dead neurons" if low else "dead neurons but high overlap"
    return Verdict(claim, "3.1", paper, ours, INCONCLUSIVE, why)


def roar(table: dict | None) -> Verdict:
    """Holds when pathway-gradient maps (NeuronMCT and NeuronIntGrad) leave a lower retrained
    accuracy than Gradient, Guided Backprop and Integrated Gradients in at least 2/3 of the
    (fraction, baseline) comparisons, by more than the larger standard deviation; does not hold
    at 1/3 or less; inconclusive between, or when the base model learned too little (< 40 %)."""
    claim = "Pathway gradient removes more of what the model needs (ROAR) than Gradient, GBP and IG"
    paper = "at t = 90 %: NeuronMCT 44.39 %, NeuronIntGrad 47.98 % vs Gradient 75.50 %, GBP 74.78 %, IG 80.90 %"
    if not table or not table.get("acc"):
        return Verdict(claim, "3.5", paper, "not run", INCONCLUSIVE, "no ROAR result")
    acc, std, base_acc = table["acc"], table["std"], table.get("base")
    fractions = sorted({f for (_, f) in acc})
    last = fractions[-1]
    parts = [
        f"{m} {100 * acc[(m, last)]:.1f} %"
        for m in ("neuron_mct", "neuron_intgrad", "gradient", "guided_backprop", "integrated_gradients", "random_ranking")
        if (m, last) in acc
    ]  # fmt: skip
    ours = f"at t = {100 * last:g} %: " + ", ".join(parts)
    if base_acc is not None:
        ours += f" (base {100 * base_acc:.1f} %)"
    if base_acc is not None and base_acc < 0.4:
        return Verdict(
            claim, "3.5", paper, ours, INCONCLUSIVE, "the retrained models learned too little"
        )
    wins = total = 0
    for pg in ("neuron_mct", "neuron_intgrad"):
        for b in ("gradient", "guided_backprop", "integrated_gradients"):
            for f in fractions:
                if (pg, f) in acc and (b, f) in acc:
                    total += 1
                    margin = max(std.get((pg, f), 0.0), std.get((b, f), 0.0))
                    wins += acc[(pg, f)] < acc[(b, f)] - margin
    if total == 0:
        return Verdict(claim, "3.5", paper, ours, INCONCLUSIVE, "methods missing")
    reason = f"pathway gradient lower in {wins} of {total} (fraction, baseline) comparisons"
    if wins >= 2 * total / 3:
        return Verdict(claim, "3.5", paper, ours, HOLDS, reason)
    if wins <= total / 3:
        return Verdict(claim, "3.5", paper, ours, FAILS, reason)
    return Verdict(claim, "3.5", paper, ours, INCONCLUSIVE, reason)


#: With one retrain per cell, a gap smaller than this (3 accuracy points) is not a difference.
ROAR_MARGIN = 0.03


def roar_claim(table: dict | None, min_base: float = 0.75) -> Verdict:
    """Holds when, at t = 90 %, both pathway-gradient methods (NeuronMCT, NeuronIntGrad) leave a
    retrained test accuracy lower than each of Gradient, Guided Backprop and Integrated Gradients
    by more than the margin; does not hold when any of these six comparisons misses the margin;
    inconclusive while a cell is missing or when the base model reaches less than ``min_base``
    (75 %) test accuracy.

    The margin: the sum of the two cells' sds over retrains where both have several; with one
    retrain per cell there is no measured spread, so the margin is a fixed 3 accuracy points.
    Why 3: the binomial sd of a test accuracy on 10,000 images is at most 0.5 points (0.7 for a
    difference of two), so 3 points is more than 4 such sds; the seed-to-seed spread of a retrain
    is not measured in this run and is the reason for the wide margin. A gap between 0 and 3
    points therefore counts as "not lower"."""
    claim = "Pathway gradient removes more of what the model needs (ROAR) than Gradient, GBP and IG"
    paper = "at t = 90 %: NeuronMCT 44.39 %, NeuronIntGrad 47.98 % vs Gradient 75.50 %, GBP 74.78 %, IG 80.90 %"
    if not table or not table.get("acc"):
        return Verdict(claim, "3.5", paper, "not run", INCONCLUSIVE, "no ROAR result")
    acc, std, base_acc = table["acc"], table.get("std", {}), table.get("base")
    t = 0.9
    order = ("neuron_mct", "neuron_intgrad", "gradient", "guided_backprop", "integrated_gradients", "random_ranking")  # fmt: skip
    ours = "at t = 90 %: " + ", ".join(
        f"{m} {100 * acc[(m, t)]:.2f} %" for m in order if (m, t) in acc
    )
    if base_acc is not None:
        ours += f" (base {100 * base_acc:.2f} %)"
    pgs, rivals = (
        ("neuron_mct", "neuron_intgrad"),
        ("gradient", "guided_backprop", "integrated_gradients"),
    )
    missing = [m for m in (*pgs, *rivals) if (m, t) not in acc]
    if base_acc is None or base_acc < min_base:
        why = f"the base model reaches {_pct(base_acc)}, below the {100 * min_base:g} % needed"
        return Verdict(claim, "3.5", paper, ours, INCONCLUSIVE, why)
    if missing:
        return Verdict(
            claim, "3.5", paper, ours, INCONCLUSIVE, f"cells at t = 90 % missing: {missing}"
        )
    gaps = []
    short = []
    for p in pgs:
        for b in rivals:
            sp, sb = std.get((p, t)), std.get((b, t))
            margin = sp + sb if sp and sb else ROAR_MARGIN
            gap = acc[(b, t)] - acc[(p, t)]
            gaps.append(gap)
            if gap <= margin:
                short.append(f"{p} vs {b}: {100 * gap:+.2f} points (margin {100 * margin:.1f})")
    if not short:
        return Verdict(
            claim, "3.5", paper, ours, HOLDS,
            f"both pathway-gradient methods are below Gradient, GBP and IG at t = 90 % by "
            f"{100 * min(gaps):.1f} to {100 * max(gaps):.1f} points (margin "
            f"{100 * ROAR_MARGIN:g} points with one retrain per cell)",
        )  # fmt: skip
    return Verdict(
        claim, "3.5", paper, ours, FAILS,
        f"{len(short)} of {len(gaps)} comparisons at t = 90 % miss the margin: " + "; ".join(short),
    )  # fmt: skip


def lerf(drops: dict | None) -> Verdict:
    """Holds when both pathway-gradient maps give a lower LeRF relative drop at 10 % removed than
    Gradient, Guided Backprop, Input x Gradient and Integrated Gradients (Grad-CAM is reported:
    the paper has it on a par)."""
    claim = "Pathway gradient has the lowest LeRF drop (removing its least important pixels hurts least)"
    paper = (
        "drop at 10 %: NeuronMCT 0.152, NeuronIntGrad 0.150, Grad-CAM 0.148, IG 0.246, "
        "InputMCT 0.247, GBP 0.387, Gradient 0.540"
    )
    if not drops:
        return Verdict(claim, "3.6", paper, "not run", INCONCLUSIVE, "no LeRF result")
    order = ("neuron_mct", "neuron_intgrad", "grad_cam", "integrated_gradients", "input_x_gradient",
             "guided_backprop", "gradient", "smoothgrad", "random_ranking")  # fmt: skip
    ours = "drop at 10 %: " + ", ".join(f"{m} {drops[m]:.3f}" for m in order if m in drops)
    rivals = [
        m
        for m in ("gradient", "guided_backprop", "input_x_gradient", "integrated_gradients")
        if m in drops
    ]
    pgs = [m for m in ("neuron_mct", "neuron_intgrad") if m in drops]
    if not pgs or not rivals:
        return Verdict(claim, "3.6", paper, ours, INCONCLUSIVE, "methods missing")
    beaten = [r for r in rivals if all(drops[p] < drops[r] for p in pgs)]
    cam = ""
    if "grad_cam" in drops:
        cam = f"; Grad-CAM {drops['grad_cam']:.3f} vs best pathway gradient {min(drops[p] for p in pgs):.3f}"
    reason = f"pathway gradient lower than {len(beaten)} of {len(rivals)} gradient baselines{cam}"
    if len(beaten) == len(rivals):
        return Verdict(claim, "3.6", paper, ours, HOLDS, reason)
    if not beaten:
        return Verdict(claim, "3.6", paper, ours, FAILS, reason)
    return Verdict(claim, "3.6", paper, ours, INCONCLUSIVE, reason)


#: The two similarity conventions of the sanity check: the paper's and Quantus's default.
CONVENTIONS = {
    "spearman": "signed Spearman of 2-D maps (the paper)",
    "spearman_abs_full": "Spearman of |map| over all channels (Quantus MPRT default)",
}
SANITY_RIVALS = (
    "guided_backprop",
    "grad_cam",
    "gradient",
    "input_x_gradient",
    "integrated_gradients",
)


def below(stats: dict, a: str, b: str) -> bool | None:
    """Whether method ``a``'s similarity is lower than ``b``'s by more than the spread: the
    difference of the means exceeds the sum of their sds over seeds. None when one is missing."""
    if a not in stats or b not in stats:
        return None
    sa, sb = stats[a], stats[b]
    return sb["mean"] - sa["mean"] > sa["sd"] + sb["sd"]


def _ms(st: dict | None) -> str:
    if not st:
        return "n/a"
    return f"{st['mean']:.3f} ± {st['sd']:.3f} [{st['min']:.2f}, {st['max']:.2f}]"


def sanity(tables: dict | None, inits: tuple[str, ...] | None = None) -> Verdict:
    """Judged after randomising the top layer, on the mean ± sd over the randomisation seeds,
    separately for each similarity convention (:data:`CONVENTIONS`) and each re-initialisation.

    Under one convention the claim holds when Guided Backprop fails the check (mean - sd > 0.5),
    the pathway-gradient methods run (NeuronMCT, NeuronIntGrad) are below it by more than the spread (:func:`below`) and by at
    least 0.3, and, in the signed convention, NeuronMCT ends (all layers randomised) below 0.3
    in |mean|. The verdict holds when it holds under both conventions for every re-initialisation
    run; does not hold when pathway gradient is not below Guided Backprop at all; otherwise
    inconclusive. The reason names every baseline pathway gradient is (and is not) below."""
    claim = "Pathway gradient passes the sanity check where Guided Backprop fails"
    paper = (
        "signed Spearman after fc: NeuronMCT 0.279, NeuronIntGrad 0.141, GBP 0.996, Gradient 0.329"
    )
    if not tables:
        return Verdict(claim, "3.4", paper, "not run", INCONCLUSIVE, "no sanity result")
    order = [i for i in (inits or ()) if i in tables] + [
        i for i in tables if i not in (inits or ())
    ]
    bits, reasons, ok, bad = [], [], True, False
    for init in order:
        t = tables[init]
        for conv in CONVENTIONS:
            first = t["first"].get(conv, {})
            last = t["last"].get(conv, {})
            pgs = [m for m in ("neuron_mct", "neuron_intgrad") if m in first]
            if not pgs or "guided_backprop" not in first:
                ok = False
                bits.append(f"init={init}, {conv}: methods missing")
                continue
            gbp = first["guided_backprop"]
            bits.append(
                f"init={init}, {CONVENTIONS[conv]}, after the top layer over {t['seeds']} seeds: "
                + ", ".join(
                    f"{m} {_ms(first.get(m))}"
                    for m in (*pgs, "guided_backprop", "gradient")
                    if m in first
                )
            )
            beats = [b for b in SANITY_RIVALS if all(below(first, p, b) for p in pgs)]
            not_beaten = [b for b in SANITY_RIVALS if b in first and b not in beats]
            gbp_fails = gbp["mean"] - gbp["sd"] > 0.5
            far = all(gbp["mean"] - first[p]["mean"] >= 0.3 for p in pgs)
            ends = conv != "spearman" or abs(last.get("neuron_mct", {}).get("mean", 1.0)) < 0.3
            holds = gbp_fails and "guided_backprop" in beats and far and ends
            ok &= holds
            bad |= not any(below(first, p, "guided_backprop") for p in pgs)
            reasons.append(
                f"init={init}, {conv}: pathway gradient below "
                + (", ".join(beats) if beats else "none")
                + " by more than the spread"
                + (f"; not below {', '.join(not_beaten)}" if not_beaten else "")
                + ("" if gbp_fails else "; Guided Backprop does not fail here")
            )
    ours = "; ".join(bits)
    if ok:
        return Verdict(
            claim, "3.4", paper, ours, HOLDS,
            "holds against Guided Backprop (the baseline the claim names) under both conventions: "
            + "; ".join(reasons),
        )  # fmt: skip
    if bad:
        return Verdict(claim, "3.4", paper, ours, FAILS, "; ".join(reasons))
    return Verdict(claim, "3.4", paper, ours, INCONCLUSIVE, "; ".join(reasons))


def linearity(table: dict | None) -> Verdict:
    """Holds when the median L2 radius of unchanged activation pattern of NeuronMCT pathways is
    more than twice the full network's and at least the Random pathways' of equal sparsity; does
    not hold when it is not larger than the full network's; otherwise inconclusive."""
    claim = "Contribution pathways are locally linear where the full network is not"
    paper = "stated as a theorem (statement not available): no figure"
    if not table or "full" not in table or "neuron_mct" not in table:
        return Verdict(claim, "4", paper, "not run", INCONCLUSIVE, "no linearity result")
    full, mct = table["full"], table["neuron_mct"]
    rnd, dgr = table.get("random"), table.get("dgr_ones")
    ours = f"median radius (L2, input space): full {full:.3g}, NeuronMCT {mct:.3g}"
    if rnd is not None:
        ours += f", Random {rnd:.3g}"
    if dgr is not None:
        ours += f", DGR(init=1) {dgr:.3g}"
    if mct <= full:
        return Verdict(claim, "4", paper, ours, FAILS, "the pathway's region is not larger")
    if mct > 2 * full and (rnd is None or mct >= rnd):
        reason = f"NeuronMCT pathways stay linear {mct / full:.1f}x farther than the full network"
        if dgr is not None and dgr > mct:
            reason += "; DGR(init=1) pathways even farther, so it is not specific to contribution"
        return Verdict(claim, "4", paper, ours, HOLDS, reason)
    why = (
        "Random pathways of equal sparsity are as linear: sparsity alone explains it"
        if rnd is not None and rnd > mct
        else "the radius grows less than 2x"
    )
    return Verdict(claim, "4", paper, ours, INCONCLUSIVE, why)


def judge_all(results: dict, sanity_inits: tuple[str, ...] | None = None) -> list[Verdict]:
    """Every claim; the ROAR verdict comes from the claim run when ``results["claim"]`` holds
    one (:mod:`pathwaygrad.reproduce.claim`), else from this run's ROAR step."""
    first = results.get("first_model")
    overlap = results.get("overlap", {}).get(first)
    claim = results.get("claim")
    return [
        dead_neurons(overlap),
        unrelated_pathways(overlap, (results.get("draws") or {}).get("spread")),
        roar_claim(claim) if claim else roar(results.get("roar")),
        lerf(results.get("lerf")),
        sanity(results.get("sanity"), sanity_inits),
        linearity(results.get("linearity")),
    ]


__all__ = [
    "CONVENTIONS",
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "P",
    "Verdict",
    "judge_all",
    "roar_claim",
]

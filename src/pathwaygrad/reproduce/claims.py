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


def unrelated_pathways(overlap: dict | None) -> Verdict:
    """Holds when, at sparsity 90, the IoU of NeuronMCT with DGR(init=r) and with Greedy is below
    half the IoU of the two contribution methods, and those pruning-objective pathways are mostly
    (> 25 %) dead neurons."""
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
    low = max(dgr_r, greedy) < 0.5 * pair
    deadish = min(dead.get("dgr_random", 0), dead.get("greedy", 0)) > 0.25
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


def sanity(tables: dict | None) -> Verdict:
    """Holds when, for every re-initialisation protocol run, NeuronMCT pathway gradient's signed
    Spearman after randomising the top layer is at least 0.3 below Guided Backprop's and it ends
    (all layers randomised) below 0.3 in |value|, while Guided Backprop stays above 0.5 after the
    top layer (it fails the check)."""
    claim = "Pathway gradient passes the sanity check where Guided Backprop fails"
    paper = (
        "signed Spearman after fc: NeuronMCT 0.279, NeuronIntGrad 0.141, GBP 0.996, Gradient 0.329"
    )
    if not tables:
        return Verdict(claim, "3.4", paper, "not run", INCONCLUSIVE, "no sanity result")
    bits, ok, bad = [], True, False
    for init, t in tables.items():
        first, last = t["first"], t["last"]
        mct, gbp = first.get("neuron_mct"), first.get("guided_backprop")
        bits.append(
            f"init={init}: after top layer NeuronMCT {mct:.3f}, NeuronIntGrad "
            f"{first.get('neuron_intgrad', float('nan')):.3f}, GBP {gbp:.3f}, Gradient "
            f"{first.get('gradient', float('nan')):.3f}; all layers: NeuronMCT {last.get('neuron_mct', float('nan')):.3f}"
            if mct is not None and gbp is not None
            else f"init={init}: methods missing"
        )
        if mct is None or gbp is None:
            ok = False
            continue
        passes = mct <= gbp - 0.3 and abs(last.get("neuron_mct", 1.0)) < 0.3
        ok &= passes and gbp > 0.5
        bad |= mct >= gbp - 0.05
    ours = "; ".join(bits)
    if ok:
        return Verdict(
            claim, "3.4", paper, ours, HOLDS,
            "pathway-gradient maps decorrelate as soon as the top layer is randomised; Guided "
            "Backprop's barely change",
        )  # fmt: skip
    if bad:
        return Verdict(
            claim, "3.4", paper, ours, FAILS, "pathway gradient stays as similar as Guided Backprop"
        )
    return Verdict(claim, "3.4", paper, ours, INCONCLUSIVE, "the margins of the rule are not met")


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


def judge_all(results: dict) -> list[Verdict]:
    first = results.get("first_model")
    overlap = results.get("overlap", {}).get(first)
    return [
        dead_neurons(overlap),
        unrelated_pathways(overlap),
        roar(results.get("roar")),
        lerf(results.get("lerf")),
        sanity(results.get("sanity")),
        linearity(results.get("linearity")),
    ]


__all__ = ["HOLDS", "FAILS", "INCONCLUSIVE", "Verdict", "judge_all", "P"]

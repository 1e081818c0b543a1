"""Target 1: NeuronMCT pathway gradient per image, as a multiple of a plain input gradient.

Baseline: the plain input gradient of the predicted class's logit, as users write it (the
model's parameters keep ``requires_grad=True``; ``torch.autograd.grad`` to the input, so no
weight gradient is computed). Candidate: ``pg.PathwayGradient(model, "neuron_mct",
sparsity=90).attribute(x)`` (select the pathway: one scoring pass, a global percentile over all
neurons of each image; then the masked pass). Target: ratio <= 2.2 (the floor is 2: two passes).

Models (random weights): VGG-16 and ResNet-50 at 224x224, batch 16; CIFAR ResNet-20 at batch 128;
torchvision's own ResNet-50 and ViT-B/16 (GELU neurons) at 224x224, batch 8 (target 2.4 for those
two, issue 12). ``--quick``: 64x64 inputs, batch 4 (ResNet-20: 32; ViT-B/16: 224x224, batch 1),
3 runs. ``--profile`` adds a breakdown of
the pathway gradient's time by phase.
"""

from __future__ import annotations

import time

import torch
from _common import (
    Timer,
    add_models_option,
    finish,
    measure_configs,
    parser,
    plain_gradient,
    setup,
    table,
)
from _models import MODEL_ACTIVATIONS, build

import pathwaygrad as pg

TARGET = 2.2
TARGETS = {"tv_resnet50": 2.4, "tv_vit_b_16": 2.4}  # real torchvision architectures (issue 12)
FULL = [
    ("vgg16", 16, None),
    ("resnet50", 16, None),
    ("resnet20", 128, None),
    ("tv_resnet50", 8, None),
    ("tv_vit_b_16", 8, None),
]
QUICK = [
    ("vgg16", 4, 64),
    ("resnet50", 4, 64),
    ("resnet20", 32, None),
    ("tv_resnet50", 4, 64),
    ("tv_vit_b_16", 1, None),
]


def profile_phases(model, x, activations=("relu",)) -> dict:
    """Seconds per phase of one NeuronMCT pathway gradient (library internals)."""
    from pathwaygrad._guard import preserved
    from pathwaygrad.methods.neuron_mct import neuron_mct_scores
    from pathwaygrad.probe import probe
    from pathwaygrad.sites import ActivationRunner
    from pathwaygrad.thresholds import threshold_masks

    out = {}
    t = time.perf_counter()
    runner = ActivationRunner(model, activations)
    with preserved(model):
        first = probe(runner, x, None)
        out["scoring forward (its backward deferred)"] = time.perf_counter() - t
        t = time.perf_counter()
        scores = neuron_mct_scores(first)
        out["scoring backward, writing |a dy/da|"] = time.perf_counter() - t
        t = time.perf_counter()
        masks = threshold_masks(scores, 90.0)
        out["threshold + masks"] = time.perf_counter() - t
    del scores
    pathway = pg.Pathway(
        masks=masks,
        sites=first.names,
        targets=first.targets,
        method="neuron_mct",
        requested_sparsity=torch.full((x.shape[0],), 90.0),
        activations=tuple(activations),
    )
    t = time.perf_counter()
    pg.pathway_gradient(model, x, pathway)
    out["masked pass (forward + backward)"] = time.perf_counter() - t
    return out


def measure(name: str, batch: int, size, args) -> tuple[str, dict]:
    model, x = build(name, batch, size=size)
    model, x = model.to(args.device), x.to(args.device)
    activations = MODEL_ACTIVATIONS.get(name, ("relu",))
    explainer = pg.PathwayGradient(
        model, method="neuron_mct", sparsity=90.0, activations=activations
    )
    target = TARGETS.get(name, TARGET)
    timer = Timer(args.device)
    timer.run(
        {"plain": lambda: plain_gradient(model, x), "pathway": lambda: explainer.attribute(x)},
        runs=args.runs,
    )
    ratio = timer.ratio("pathway", "plain")
    key = f"{name}_b{batch}" + (f"_{size}px" if size else "")
    row = {
        "model": name,
        "input": f"{batch}x{tuple(x.shape[1:])}",
        "plain s/img": timer.median("plain") / batch,
        "pathway s/img": timer.median("pathway") / batch,
        "ratio (wall)": ratio,
        "ratio (cpu)": timer.ratio("pathway", "plain", cpu=True),
        "target": f"<= {target}",
        "met": "yes" if ratio <= target else "no",
    }
    print(f"{key}: ratio {ratio:.3f}", flush=True)
    if args.profile:
        phases = profile_phases(model, x, activations)
        plain = timer.median("plain")
        for k, v in phases.items():
            print(f"    {k:36s} {v:8.3f} s  ({v / plain:.2f} x plain)")
    return key, row


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profile", action="store_true", help="print the time per phase")
    add_models_option(p)
    args = p.parse_args(argv)
    setup(args)
    rows, ratios = measure_configs(args, FULL, QUICK, measure)
    print()
    print("NeuronMCT pathway gradient vs plain input gradient (median of per-run ratios)")
    print(
        table(
            rows,
            [
                "model",
                "input",
                "plain s/img",
                "pathway s/img",
                "ratio (wall)",
                "ratio (cpu)",
                "target",
                "met",
            ],
        )
    )
    finish(args, "neuron_mct_vs_plain_gradient", ratios, {"target": TARGET})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

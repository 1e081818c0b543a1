"""Target 2: NeuronIntGrad scores of every activation call vs a Captum LayerIntegratedGradients loop.

Baseline, "the natural Captum way": one ``captum.attr.LayerIntegratedGradients`` per activation
call (the ReLU module of that call; models whose calls are functional or share a module are
rebuilt with one ``nn.ReLU`` module per call and the same weights, and in-place ReLUs made out
of place, as Captum's layer hooks need), each with ``n_steps`` = 11 points on the uniform grid
(``method="riemann_trapezoid"``: alpha = 0, 0.1, ..., 1) and the default zero input baseline,
target = the predicted class. Candidate: ``pg.score_neurons(model, x, "neuron_intgrad",
steps=10)`` (11 points per call, every call, the probe pass included). Target: ratio <= 0.6.

(Captum's layer baseline is the layer's activation at the zero *input*, pathwaygrad's is a zero
*activation*; the work is the same: per call, 11 scaled copies run above the call and
backpropagate to it.)

Full: VGG-16 at 112x112, batch 2, and ResNet-50 at 64x64, batch 1 (224x224 costs ~50 s per image
for Captum alone on this CPU; the ratio depends on where the compute sits in the network more
than on the resolution); CIFAR ResNet-20 at batch 16. ``--quick``: 64x64, batch 1; ResNet-20 batch 4; 3 runs.
"""

from __future__ import annotations

import torch
from _common import Timer, add_models_option, finish, measure_configs, parser, setup, table
from _models import build
from torch import nn

import pathwaygrad as pg

TARGET = 0.6
STEPS = 10
FULL = [("vgg16", 2, 112), ("resnet50", 1, 64), ("resnet20", 16, None)]
QUICK = [("vgg16", 1, 64), ("resnet50", 1, 64), ("resnet20", 4, None)]


def captum_model(name: str, model: nn.Module) -> nn.Module:
    """The same network with one out-of-place ``nn.ReLU`` module per activation call."""
    if name == "vgg16":
        twin = build(name, 1)[0]
        twin.load_state_dict(model.state_dict())
    elif name == "resnet50":
        twin = build(name, 1, distinct_relus=True)[0]
        twin.load_state_dict(model.state_dict())
    else:
        twin = build(name, 1, relu_modules=True)[0]
        twin.load_state_dict(model.state_dict())
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return twin.eval()


def relu_modules_in_call_order(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    order: list[nn.Module] = []
    handles = [
        m.register_forward_hook(lambda mod, i, o: order.append(mod))
        for m in model.modules()
        if isinstance(m, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if len(set(map(id, order))) != len(order):
        raise RuntimeError("a ReLU module is called more than once: Captum needs one per call")
    return order


def captum_loop(model, layers, x, target):
    from captum.attr import LayerIntegratedGradients

    out = []
    for layer in layers:
        lig = LayerIntegratedGradients(model, layer)
        out.append(lig.attribute(x, target=target, n_steps=STEPS + 1, method="riemann_trapezoid"))
    return out


def measure(name, batch, size, args) -> tuple[str, dict]:
    model, x = build(name, batch, size=size)
    twin = captum_model(name, model)
    model, twin, x = model.to(args.device), twin.to(args.device), x.to(args.device)
    layers = relu_modules_in_call_order(twin, x)
    calls = len(pg.activation_sites(model, x))
    assert len(layers) == calls, (len(layers), calls)
    with torch.no_grad():
        target = model(x).argmax(1)
    timer = Timer(args.device)
    timer.run(
        {
            "captum": lambda: captum_loop(twin, layers, x, target),
            "pathwaygrad": lambda: pg.score_neurons(
                model, x, target, method="neuron_intgrad", steps=STEPS
            ),
        },
        runs=args.runs,
    )
    ratio = timer.ratio("pathwaygrad", "captum")
    key = f"{name}_b{batch}" + (f"_{size}px" if size else "")
    print(f"{key}: ratio {ratio:.3f}", flush=True)
    return key, {
        "model": name,
        "input": f"{batch}x{tuple(x.shape[1:])}",
        "calls": calls,
        "captum s/img": timer.median("captum") / batch,
        "pathwaygrad s/img": timer.median("pathwaygrad") / batch,
        "ratio (wall)": ratio,
        "ratio (cpu)": timer.ratio("pathwaygrad", "captum", cpu=True),
        "target": f"<= {TARGET}",
        "met": "yes" if ratio <= TARGET else "no",
    }


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    add_models_option(p)
    args = p.parse_args(argv)
    setup(args)
    rows, ratios = measure_configs(args, FULL, QUICK, measure)
    print()
    print(f"NeuronIntGrad ({STEPS} steps, every call) vs a Captum LayerIntegratedGradients loop")
    cols = ["model", "input", "calls", "captum s/img", "pathwaygrad s/img"]
    cols += ["ratio (wall)", "ratio (cpu)", "target", "met"]
    print(table(rows, cols))
    finish(args, "neuron_intgrad_vs_captum_lig_loop", ratios, {"target": TARGET, "steps": STEPS})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The core's oracle properties on real torchvision / timm architecture code (random weights).

For each architecture, in eval mode at its own input size, batch 2, activations chosen as the
command line does (``"auto"``: ReLU if the model calls any, else the kinds it calls):

- at sparsity 0 the pathway gradient equals the plain input gradient of the target logit;
- the real sparsity is the requested one, or above it only by neurons whose score ties at the
  threshold (ReLU models: many neurons score exactly 0, see docs/real-models.md);
- the batched pathway (masks and gradient) equals the per-example one;
- the model is left unchanged: weights and buffers bit for bit, train/eval modes, requires_grad
  flags, no hooks.

The first three architectures are the fast default subset; the rest are ``slow``.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip(
    "torchvision", reason="needs the vision extra: pip install 'pathwaygrad[vision]'"
)
pytest.importorskip("timm", reason="needs the vision extra: pip install 'pathwaygrad[vision]'")

import pathwaygrad as pg
from pathwaygrad.models import load_vision_model
from pathwaygrad.sites import resolve_activations

FAST = [
    "torchvision:mobilenet_v3_small",
    "torchvision:efficientnet_b0",
    "timm:deit_tiny_patch16_224",
]
SLOW = [
    "torchvision:resnet50",
    "torchvision:vgg16_bn",
    "torchvision:densenet121",
    "torchvision:convnext_tiny",
    "torchvision:vit_b_16",
    "torchvision:swin_t",
    "timm:resnet50",
    "timm:vit_small_patch16_224",
    "timm:convnext_nano",
    "timm:efficientnet_b0",
    "timm:mobilevitv2_050",
]
MATRIX = FAST + [pytest.param(name, marks=pytest.mark.slow) for name in SLOW]

SPARSITY = 90.0


def build(name: str, device: torch.device):
    torch.manual_seed(0)
    vision = load_vision_model(name)
    model = vision.model.to(device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, vision.input_size, vision.input_size, generator=gen).to(device)
    return model, x


def snapshot(model: torch.nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
    }


def hooks(model: torch.nn.Module) -> int:
    total = 0
    for m in model.modules():
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_state_dict_hooks",
            "_load_state_dict_pre_hooks",
        ):
            total += len(getattr(m, attr, {}) or {})
    return total


def assert_unchanged(model: torch.nn.Module, snap: dict, n_hooks: int) -> None:
    state = model.state_dict()
    assert state.keys() == snap["state"].keys()
    for k, v in snap["state"].items():
        assert torch.equal(state[k], v), f"{k} changed"
    assert {n: m.training for n, m in model.named_modules()} == snap["training"]
    assert {n: p.requires_grad for n, p in model.named_parameters()} == snap["grad"]
    assert all(p.grad is None for p in model.parameters())
    assert hooks(model) == n_hooks


def plain_gradient(model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    xi = x.detach().clone().requires_grad_(True)
    out = model(xi)
    (grad,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), xi)
    return grad


def close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4) -> bool:
    scale = b.abs().max().clamp(min=1e-12)
    return bool(((a - b).abs().max() / scale) <= rel)


@pytest.mark.parametrize("name", MATRIX)
def test_oracle_properties_on_real_architectures(name, device):
    model, x = build(name, device)
    snap, n_hooks = snapshot(model), hooks(model)
    kinds, _ = resolve_activations(model, x, "auto")
    with torch.no_grad():
        target = model(x).argmax(1)

    # sparsity 0: the pathway is the whole network, so its gradient is the plain gradient
    full = pg.select_pathway(model, x, target, "neuron_mct", sparsity=0.0, activations=kinds)
    assert close(pg.pathway_gradient(model, x, full), plain_gradient(model, x, target))

    # real sparsity: the requested one, or above it only by ties at the threshold
    pathway = pg.select_pathway(
        model, x, target, "neuron_mct", sparsity=SPARSITY, activations=kinds
    )
    scores = pg.score_neurons(model, x, target, "neuron_mct", activations=kinds)
    flat = torch.cat([s.flatten(1) for s in scores.scores], 1).float()
    for b in range(x.shape[0]):
        real = float(pathway.sparsity[b])
        zero = float((flat[b] == 0).float().mean() * 100)  # neurons scoring exactly 0 tie
        assert abs(real - SPARSITY) <= 0.01 or (zero > SPARSITY and abs(real - zero) <= 0.01), (
            f"example {b}: {real:.3f} % pruned for {SPARSITY} % requested ({zero:.3f} % score 0)"
        )

    # batched equals per-example: the same pathway (up to neurons whose score ties with the
    # threshold within float rounding: a batched convolution may round differently), and the
    # same gradient through a given pathway
    attr = pg.pathway_gradient(model, x, pathway)
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        one = pg.select_pathway(
            model, xb, target[b : b + 1], "neuron_mct", sparsity=SPARSITY, activations=kinds
        )
        differ = sum(int((m1[0] != m2[b]).sum()) for m1, m2 in zip(one.masks, pathway.masks))
        assert differ <= 1e-5 * one.num_neurons, f"{differ} neurons differ for example {b}"
        assert close(pg.pathway_gradient(model, xb, pathway[b : b + 1])[0], attr[b])

    assert_unchanged(model, snap, n_hooks)

"""A text transformer from outside vision: ``nn.TransformerEncoder`` with GELU MLPs (examples/).

Pathways over the MLP activations, attribution to the embedding output; checked against an
independently masked copy of the model and against Captum.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import pathwaygrad as pg
from pathwaygrad.sites import resolve_activations

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "text_transformer.py"


@pytest.fixture(scope="module")
def ex():
    spec = importlib.util.spec_from_file_location("text_transformer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def setup(ex, device):
    torch.manual_seed(0)
    model = ex.TinyLM().to(device).eval()
    ids, _ = ex.toy_batch(3, torch.Generator().manual_seed(1))
    ids = ids.to(device)
    emb = model.embed(ids).detach()
    return model, ids, emb, ex.FromEmbeddings(model)


def test_pathway_is_the_mlp_activations_and_auto_finds_gelu(ex, setup):
    model, ids, emb, net = setup
    kinds, note = resolve_activations(net, emb, "auto")
    assert kinds == ("gelu",) and "no ReLU" in note
    sites = pg.activation_sites(net, emb, kinds)
    # one GELU call per layer (the MLP); no softmax, no LayerNorm
    assert len(sites) == ex.LAYERS and all(s.kind == "gelu" for s in sites)
    assert all(s.shape == (3, ex.LENGTH, 4 * ex.DIM) for s in sites)


def test_pathway_gradient_equals_a_hand_masked_copy(setup):
    model, ids, emb, net = setup
    pathway = pg.select_pathway(net, emb, None, "neuron_mct", sparsity=90.0, activations="gelu")
    assert torch.allclose(pathway.sparsity, torch.full((3,), 90.0), atol=0.05)
    attr = pg.pathway_gradient(net, emb, pathway)
    assert attr.shape == emb.shape
    # independent computation: a copy whose GELUs multiply by the masks, plain autograd
    twin = copy.deepcopy(model)
    for layer, mask in zip(twin.encoder.layers, pathway.masks):
        layer.activation = lambda h, m=mask: F.gelu(h) * m.to(h.dtype)
    e = emb.clone().requires_grad_(True)
    out = twin.from_embeddings(e)
    (grad,) = torch.autograd.grad(out.gather(1, pathway.targets.view(-1, 1)).sum(), e)
    assert torch.allclose(attr, grad, rtol=1e-4, atol=1e-6)
    # and the pathway's logits are those of the masked copy
    logits = pg.pathway_logits(net, emb, pathway)
    assert torch.allclose(logits, out.detach(), rtol=1e-4, atol=1e-5)


def test_sparsity_zero_is_captums_gradient_at_the_embedding_layer(setup):
    from captum.attr import LayerGradientXActivation

    model, ids, emb, net = setup
    pathway = pg.select_pathway(net, emb, None, "neuron_mct", sparsity=0.0)
    attr = pg.pathway_gradient(net, emb, pathway)
    layer = LayerGradientXActivation(model, model.embed, multiply_by_inputs=False)
    captum = layer.attribute(ids, target=pathway.targets)
    assert torch.allclose(attr, captum, rtol=1e-4, atol=1e-6)


def test_example_scores_tokens_and_leaves_the_model_unchanged(ex, setup):
    model, ids, emb, net = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = ex.explain_tokens(model, ids)
    for name, scores in out["scores"].items():
        assert scores.shape == ids.shape, name  # one score per token
        assert torch.isfinite(scores).all()
    # LayerIntegratedGradients' completeness: token scores sum to logit(ids) - logit(baseline ids);
    # Captum's default baseline is token id 0 everywhere (embedded by the layer)
    with torch.no_grad():
        t = out["pathway"].targets.view(-1, 1)
        gap = model(ids).gather(1, t) - model(torch.zeros_like(ids)).gather(1, t)
    total = out["scores"]["layer_integrated_gradients"].sum(1, keepdim=True)
    assert torch.allclose(total, gap, atol=0.02 * float(gap.abs().max()))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items())
    assert not model.training and all(p.grad is None for p in model.parameters())

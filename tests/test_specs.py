"""The one method vocabulary: grammar, registry, validation, labels, display names, fingerprints."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import pathwaygrad as pg
from pathwaygrad.errors import UserError
from pathwaygrad.specs import (
    METHODS,
    MethodSpec,
    display_name,
    method_names,
    parse_method,
    parse_methods,
)


def test_registry_covers_every_core_method_with_the_core_options():
    from pathwaygrad.attribution.baselines import BASELINE_OPTIONS
    from pathwaygrad.methods import METHOD_OPTIONS

    assert method_names(["pathway"]) == list(pg.PATHWAY_METHODS)
    assert method_names(["baseline"]) == list(pg.BASELINE_METHODS)
    assert method_names(["control"]) == ["random_ranking", "edge"]
    for name in pg.PATHWAY_METHODS:
        core = set(METHOD_OPTIONS[name]) - {"progress"}
        extra = (
            set()
            if name == "dead"
            else {"sparsity"} | ({"threshold"} if name != "greedy" else set())
        )
        assert set(METHODS[name].options) == core | extra, name
    for name in pg.BASELINE_METHODS:
        assert set(METHODS[name].options) == set(BASELINE_OPTIONS[name]), name


def test_schema_defaults_equal_the_core_signature_defaults():
    from pathwaygrad.methods.dgr import dgr_scores
    from pathwaygrad.methods.greedy import greedy_masks
    from pathwaygrad.methods.neuron_intgrad import neuron_intgrad_scores
    from pathwaygrad.methods.random import random_scores

    for name, fn in [
        ("dgr", dgr_scores),
        ("greedy", greedy_masks),
        ("neuron_intgrad", neuron_intgrad_scores),
        ("random", random_scores),
    ]:
        params = inspect.signature(fn).parameters
        for key, opt in METHODS[name].options.items():
            if key in params and key != "sparsity":
                assert opt.default == params[key].default, (name, key)
    default_sparsity = inspect.signature(pg.select_pathway).parameters["sparsity"].default
    assert METHODS["neuron_mct"].options["sparsity"].default == default_sparsity


def test_the_random_pathway_rule_is_its_default_threshold():
    assert MethodSpec.create("random").kwargs["threshold"] == "per_layer"
    assert MethodSpec.create("neuron_mct").kwargs["threshold"] == "global"
    assert parse_method("random:threshold=global").kwargs["threshold"] == "global"


def test_grammar_labels_and_typed_values():
    specs = parse_methods(
        "neuron_mct;ig50=integrated_gradients:n_steps=50;dgr:init=random,iterations=100"
    )
    assert [s.name for s in specs] == ["neuron_mct", "integrated_gradients", "dgr"]
    assert [s.label for s in specs] == ["neuron_mct", "ig50", "dgr(init=random,iterations=100)"]
    assert specs[1].options == (("n_steps", 50),) and isinstance(specs[1].kwargs["n_steps"], int)
    assert specs[2].kwargs["iterations"] == 100 and specs[2].kwargs["init"] == "random"
    assert parse_method("neuron_mct:sparsity=70").kwargs["sparsity"] == 70.0
    assert isinstance(parse_method("neuron_mct:sparsity=70").kwargs["sparsity"], float)
    assert parse_method("grad_cam:relu_attributions=false").kwargs["relu_attributions"] is False
    assert (
        parse_method("smoothgrad:nt_samples_batch_size=none").kwargs["nt_samples_batch_size"]
        is None
    )
    assert parse_method("neuron_mct:sparsity=adaptive").kwargs["sparsity"] == "adaptive"
    # a comma list of plain names, and Python lists mixing strings, specs and callables
    assert [s.name for s in parse_methods("neuron_mct, gradient")] == ["neuron_mct", "gradient"]

    def mine(model, x, t):
        return x

    got = parse_methods(["gradient", MethodSpec.create("random"), mine, ("other", mine)])
    assert [s.label for s in got] == ["gradient", "random", "mine", "other"]
    assert got[2].kind == "custom" and got[2].fn is mine and got[2].display == "mine"


def test_one_meaning_for_dgr_options():
    a = parse_method("dgr:init=random,iterations=100")
    b = parse_method("dgr_random:iterations=100")
    c = MethodSpec.create("dgr", init="random", iterations=100)
    assert a == b == c and a.fingerprint() == b.fingerprint()
    assert a.kwargs["iterations"] == 100 and a.kwargs["init"] == "random"
    with pytest.raises(UserError, match="separate options with ','"):
        parse_method("dgr:init=random:iterations=100")


def test_aliases():
    assert parse_method("dgr_ones") == MethodSpec.create("dgr", init="ones")
    assert parse_method("dgr_random").label == "dgr(init=random)"
    assert parse_method("dgr_random").display == "DGR(init=r)"
    assert parse_method("dgr_ones").display == "DGR(init=1)"
    assert parse_method("dgr").display == "DGR(init=1)"
    with pytest.raises(UserError, match="sets init=random already"):
        parse_method("dgr_random:init=ones")


def test_round_trip_through_text():
    texts = [
        "neuron_mct",
        "neuron_mct:sparsity=70.5,threshold=per_layer",
        "ig50=integrated_gradients:n_steps=50",
        "dgr:init=random,iterations=100,lam=0.02",
        "grad_cam:layer=layer3,relu_attributions=false",
        "edge",
    ]
    for text in texts:
        spec = parse_method(text)
        assert parse_method(spec.text) == spec, text
        assert parse_method(str(spec)).fingerprint() == spec.fingerprint()
    joined = ";".join(s.text for s in parse_methods(";".join(texts)))
    assert parse_methods(joined) == parse_methods(";".join(texts))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "unknown method 'foo'.*neuron_mct"),
        ("gradient;foo", "unknown method 'foo'"),
        ("neuron_mct,dgr:init=random", "separate methods with ';'"),
        ("neuron_mct:sparsity=70,gradient", "not key=value"),
        ("neuron_mct:", "no options"),
        ("neuron_mct:spars=70", "takes no option 'spars'.*sparsity"),
        ("neuron_mct:sparsity=100", "sparsity.*\\[0, 100\\)"),
        ("neuron_mct:sparsity=-1", "sparsity"),
        ("neuron_mct:sparsity=true", "sparsity"),
        ("neuron_mct:sparsity=nan", "sparsity"),
        ("integrated_gradients:n_steps=0", "n_steps.*\\[1"),
        ("integrated_gradients:n_steps=1.5", "n_steps"),
        ("smoothgrad:nt_samples=0", "nt_samples"),
        ("dgr:init=zeros", "init.*ones, random"),
        ("dgr:iterations=none", "cannot be none"),
        ("grad_cam:relu_attributions=maybe", "relu_attributions"),
        ("greedy:step=0", "step"),
        ("neuron_mct:sparsity=70,sparsity=80", "given twice"),
        ("gradient;gradient", "unique.*gradient"),
        ("a=neuron_mct;a=gradient", "unique"),
        ("", "no methods"),
        ("a(b=gradient", "label"),
        ("dead:sparsity=90", "takes no option"),
    ],
)
def test_bad_input_is_one_line_user_error(text, message):
    with pytest.raises(UserError, match=message) as info:
        parse_methods(text)
    assert "\n" not in str(info.value)


def test_python_values_are_checked_too():
    with pytest.raises(UserError, match="sparsity"):
        MethodSpec.create("neuron_mct", sparsity=True)
    with pytest.raises(UserError, match="n_steps"):
        MethodSpec.create("integrated_gradients", n_steps=0)
    with pytest.raises(UserError, match="cannot use"):
        parse_methods([3])
    assert MethodSpec.create("integrated_gradients", n_steps=20.0).kwargs["n_steps"] == 20


def test_kinds_and_controls_filter():
    with pytest.raises(UserError, match="not allowed here.*neuron_mct"):
        parse_methods("gradient", kinds=["pathway"])
    with pytest.raises(UserError, match="'edge' \\(control\\) is not allowed"):
        parse_methods("gradient;edge", allow_controls=False)
    assert len(parse_methods("random_ranking;edge")) == 2


def test_describe_is_json_and_fingerprint_stable():
    import json

    spec = parse_method("dgr:init=random,iterations=100")
    d = spec.describe()
    assert json.loads(json.dumps(d)) == d
    assert d["options"]["lam"] == 0.01 and d["kind"] == "pathway"
    # fixed value: a change of this hash invalidates every cache; change it only on purpose
    assert spec.fingerprint() == parse_method("dgr_random:iterations=100").fingerprint()
    assert spec.fingerprint() != parse_method("dgr:init=random,iterations=101").fingerprint()
    # the label names a result; the fingerprint keys what computes it
    assert parse_method("x=dgr:init=random,iterations=100").fingerprint() == spec.fingerprint()
    assert len(spec.fingerprint()) == 12


def test_with_options():
    spec = parse_method("neuron_mct")
    assert spec.with_options(sparsity=70).label == "neuron_mct(sparsity=70)"
    kept = parse_method("neuron_mct:sparsity=50").with_options(override=False, sparsity=70)
    assert kept.kwargs["sparsity"] == 50.0
    quiet = parse_method("dgr_random").with_options(relabel=False, iterations=10)
    assert quiet.label == "dgr(init=random)" and quiet.kwargs["iterations"] == 10
    assert quiet.display == "DGR(init=r)" and not quiet.custom_label
    assert parse_methods([quiet]) == [quiet] and parse_methods([quiet])[0].label == quiet.label
    # its text names the same computation (the label is then made from every option)
    assert parse_method(quiet.text).fingerprint() == quiet.fingerprint()
    assert parse_method(quiet.text).label == "dgr(init=random,iterations=10)"
    mine = parse_method("mine=dgr").with_options(relabel=False, iterations=10)
    assert mine.label == "mine" and mine.display == "mine"
    assert quiet.fingerprint() != parse_method("dgr_random").fingerprint()
    with pytest.raises(UserError, match="iterations"):
        spec.with_options(iterations=10)


def test_display_names():
    assert display_name("neuron_mct") == "NeuronMCT"
    assert display_name("input_x_gradient") == "Input x Gradient"
    assert display_name("neuron_mct:sparsity=70") == "NeuronMCT(sparsity=70)"
    assert display_name("ig50=integrated_gradients:n_steps=50") == "ig50"
    assert display_name("not a method") == "not a method"
    assert METHODS["integrated_gradients"].paper_name == "InputIntGrad"


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_explain_delegates_to_pg_explain_with_the_options():
    torch.manual_seed(0)
    model = _Tiny().eval()
    x = torch.randn(2, 3, 8, 8)
    t = torch.tensor([0, 2])
    spec = parse_method("random:sparsity=50,seed=3")
    want = pg.explain(model, x, "random", target=t, sparsity=50.0, seed=3, threshold="per_layer")
    assert torch.equal(spec.explain(model, x, t), want)
    grad = parse_method("gradient").explain(model, x, t)
    assert torch.equal(grad, pg.explain(model, x, "gradient", target=t))
    ig = parse_method("integrated_gradients:n_steps=4").explain(model, x, t)
    assert torch.equal(ig, pg.explain(model, x, "integrated_gradients", target=t, n_steps=4))
    edge = parse_method("edge").explain(model, x, t)
    assert edge.shape == (2, 1, 8, 8)
    with pytest.raises(UserError, match="random_ranking"):
        parse_method("random_ranking").explain(model, x, t)
    bad = parse_methods([("bad", lambda m, a, b: torch.zeros(5))])[0]
    with pytest.raises(UserError, match="shape"):
        bad.explain(model, x, t)

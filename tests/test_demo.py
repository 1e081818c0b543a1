"""``pathwaygrad demo``: the bundled model and photos, no network and no ../shared."""

from __future__ import annotations

import json

import pytest
import torch

from pathwaygrad.cli.main import main
from pathwaygrad.models import demo_weights_path


def test_bundled_weights_are_small_documented_and_load():
    path = demo_weights_path()
    assert path.stat().st_size < 2 * 1024 * 1024
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert saved["model"] == "vgg_tiny" and len(saved["classes"]) == 10
    assert saved["state_dict"]["classifier.weight"].dtype == torch.float16
    assert 0.5 < saved["test_accuracy"] < 1.0  # measured on the 10,000 CIFAR-10 test images
    assert "pathwaygrad train" in saved["command"]
    from pathwaygrad.models import load_model

    model = load_model("vgg_tiny", path)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_demo_runs_offline_and_names_its_folder(tmp_path, monkeypatch, capsys):
    import pathwaygrad.data.cache
    import pathwaygrad.data.cifar

    def no_shared():
        raise AssertionError("the demo must not need ../shared")

    for module in (pathwaygrad.data.cache, pathwaygrad.data.cifar):
        monkeypatch.setattr(module, "shared_dir", no_shared)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert str(out.resolve()) in last
    index = json.loads((out / "index.json").read_text())
    assert index["figures"][:1] == ["demo.png"] and "sweep.png" in index["figures"]
    for fig in index["figures"]:
        assert (out / fig).stat().st_size > 5000
    assert set(index["photos"]) == {"chelsea", "coffee", "rocket", "astronaut"}
    cat = json.loads((out / "chelsea.json").read_text())
    assert cat["input_shape"] == [3, 32, 32] and len(cat["methods"]) == 8
    assert cat["methods"]["neuron_mct"]["sparsity"] > 89.99
    from pathwaygrad.data import CIFAR10_CLASSES

    assert cat["prediction"]["name"] in CIFAR10_CLASSES
    assert 0.0 < cat["prediction"]["probability"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--photos", "chelsea,unicorn"], "unknown photo 'unicorn'"),
        (["--sweep-method", "gradient"], "--sweep-method must be a pathway method"),
        (["--methods", "neuron_mct,nope"], "unknown method 'nope'"),
    ],
)
def test_demo_bad_arguments(tmp_path, capsys, args, message):
    assert main(["demo", "--out", str(tmp_path / "d"), *args]) == 2
    assert message in capsys.readouterr().err

"""``pathwaygrad explain`` on torchvision / timm models: their preprocessing, class names, notes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip(
    "torchvision", reason="needs the vision extra: pip install 'pathwaygrad[vision]'"
)
pytest.importorskip("timm", reason="needs the vision extra: pip install 'pathwaygrad[vision]'")
from PIL import Image

from pathwaygrad.cli.main import main
from pathwaygrad.explainee import load_explainee

# model -> the activation kinds "auto" picks (ReLU if called at all, else the kinds called)
CASES = {
    "torchvision:mobilenet_v3_small": ["relu"],
    "torchvision:efficientnet_b0": ["silu", "sigmoid"],
    "timm:deit_tiny_patch16_224": ["gelu"],
}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("vision") / "photo.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)).save(path)
    return path


def categories(spec: str) -> list[str]:
    source, _, name = spec.partition(":")
    if source == "torchvision":
        import torchvision.models as tvm

        return list(tvm.get_model_weights(name).DEFAULT.meta["categories"])
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0] for i in range(1000)]


@pytest.mark.parametrize("spec", list(CASES))
def test_explain_writes_figure_and_json_with_class_names(
    spec, photo, tmp_path, capsys, monkeypatch
):
    import pathwaygrad.viz

    titles = []
    draw = pathwaygrad.viz.explanation_figure

    def spy(result, *, title=None):
        titles.append(title)
        return draw(result, title=title)

    monkeypatch.setattr(pathwaygrad.viz, "explanation_figure", spy)
    out = tmp_path / "out"
    args = ["explain", str(photo), "--model", spec, "--methods", "neuron_mct;gradient"]
    assert main(args + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / "photo.png").stat().st_size > 5000
    summary = json.loads((out / "photo.json").read_text())
    assert summary["input_shape"] == [3, 224, 224]  # the model's resize + centre crop
    assert summary["pretrained"] is False and "(random weights)" in titles[0]
    names = categories(spec)
    pred = summary["prediction"]
    assert pred["name"] == names[pred["class"]] and not pred["name"].isdigit()
    assert summary["activations"] == CASES[spec]
    if CASES[spec] != ["relu"]:
        assert f"this model calls no ReLU; using {', '.join(CASES[spec])}" in printed
    rec = summary["methods"]["neuron_mct"]
    assert rec["activations"] == CASES[spec] and abs(rec["sparsity"] - 90.0) < 0.01
    amap = np.load(out / rec["map"])
    assert amap.shape == (3, 224, 224) and np.isfinite(amap).all() and np.abs(amap).max() > 0


def test_preprocessing_is_the_weights_own_transform(photo):
    import torchvision.models as tvm

    exp = load_explainee("torchvision:mobilenet_v3_small")
    expected = tvm.MobileNet_V3_Small_Weights.DEFAULT.transforms()(Image.open(photo).convert("RGB"))
    assert torch.equal(exp.load_image(photo), expected)
    assert exp.classes == tvm.MobileNet_V3_Small_Weights.DEFAULT.meta["categories"]
    timm_exp = load_explainee("timm:deit_tiny_patch16_224")
    from timm.data import create_transform, resolve_data_config

    cfg = resolve_data_config({}, model=timm_exp.model)
    expected = create_transform(**cfg)(Image.open(photo).convert("RGB"))
    assert torch.equal(timm_exp.load_image(photo), expected)
    assert timm_exp.mean == tuple(cfg["mean"]) and timm_exp.fixed_size


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "torchvision:mobilenet_v3_small", "--weights", "IMAGENET1K_V1"],
            "pass its path: --weights FILE",
        ),
        (
            ["--model", "timm:deit_tiny_patch16_224", "--weights", "fb_in1k"],
            "pass its path: --weights FILE",
        ),
        (["--model", "torchvision:mobilenet_v3_small", "--weights", "V9"], "has no weights named"),
        (["--model", "timm:deit_tiny_patch16_224", "--size", "160"], "takes 224 x 224 images only"),
        (["--model", "torchvision:no_such_net"], "torchvision has no model 'no_such_net'"),
    ],
)
def test_vision_errors_are_one_line(photo, tmp_path, capsys, monkeypatch, args, message):
    import urllib.error

    import torch.hub

    def offline(*a, **k):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "urlopen", offline)  # timm: HF_HUB_OFFLINE=1 (conftest)
    assert main(["explain", str(photo), *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "o").exists()

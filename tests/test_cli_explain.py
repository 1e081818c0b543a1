"""``pathwaygrad explain``: figures, JSON and maps for real image files; bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pathwaygrad.cli.main import main
from pathwaygrad.models import build_model


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A weights file as ``pathwaygrad train`` writes it, and image files of several kinds."""
    d = tmp_path_factory.mktemp("explain")
    torch.manual_seed(0)
    model = build_model("vgg_tiny", num_classes=3)
    torch.save(
        {
            "model": "vgg_tiny",
            "state_dict": model.state_dict(),
            "classes": ["ant", "bee", "cow"],
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
        },
        d / "weights.pt",
    )
    torch.save(build_model("resnet20").state_dict(), d / "resnet20.pt")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(d / "photo.jpg")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / "small.png")
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(d / "grey.png")
    (d / "notes.png").write_text("not an image")
    return {p.name: p for p in d.iterdir()}


def run_explain(files, out, *extra) -> int:
    args = ["explain", str(files["photo.jpg"]), str(files["small.png"])]
    return main(args + ["--weights", str(files["weights.pt"]), "--out", str(out), *extra])


def test_explain_writes_figure_json_and_maps(files, tmp_path, capsys):
    out = tmp_path / "out"
    methods = "neuron_mct,neuron_intgrad,gradient,grad_cam"
    assert run_explain(files, out, "--methods", methods, "--sparsity", "80", "--steps", "3") == 0
    assert "wrote 2 figure(s)" in capsys.readouterr().out
    for stem in ("photo", "small"):
        assert (out / f"{stem}.png").stat().st_size > 1000
        summary = json.loads((out / f"{stem}.json").read_text())
        assert summary["model"] == "vgg_tiny" and summary["input_shape"] == [3, 32, 32]
        pred = summary["prediction"]
        assert pred["name"] in ("ant", "bee", "cow") and 0 < pred["probability"] <= 1
        assert list(summary["methods"]) == methods.split(",")
        for name, rec in summary["methods"].items():
            amap = np.load(out / rec["map"])
            assert amap.dtype == np.float32
            assert amap.shape == ((1, 32, 32) if name == "grad_cam" else (3, 32, 32))
            assert np.isfinite(amap).all() and np.abs(amap).max() > 0
            assert rec["seconds"] >= 0
        mct = summary["methods"]["neuron_mct"]
        assert mct["kind"] == "pathway_gradient" and mct["sparsity_requested"] == 80.0
        # real sparsity: about the requested one (ties at 0 may add some; interpolation ~1e-3)
        assert 79.99 <= mct["sparsity"] < 100.0
        assert mct["full_logit"] == pytest.approx(pred["full_logit"])
        assert isinstance(mct["pathway_logit"], float)
        assert summary["methods"]["gradient"]["kind"] == "baseline"
    # the stored gradient is the model's input gradient at the normalised image
    summary = json.loads((out / "small.json").read_text())
    model = build_model("vgg_tiny", num_classes=3, weights=files["weights.pt"])
    img = torch.from_numpy(np.array(Image.open(files["small.png"]))).permute(2, 0, 1) / 255
    x = ((img - 0.5) / 0.25).unsqueeze(0).requires_grad_(True)
    model(x)[0, summary["prediction"]["class"]].backward()
    assert np.allclose(np.load(out / "small/gradient.npy"), x.grad[0].numpy(), atol=1e-5)


def test_sparsity_sweep_of_one_method(files, tmp_path):
    out = tmp_path / "sweep"
    args = ["--methods", "neuron_mct", "--sparsity", "0,70,90,99", "--target", "bee"]
    assert run_explain(files, out, *args) == 0
    summary = json.loads((out / "small.json").read_text())
    assert list(summary["methods"]) == [
        "neuron_mct@0",
        "neuron_mct@70",
        "neuron_mct@90",
        "neuron_mct@99",
    ]
    real = [rec["sparsity"] for rec in summary["methods"].values()]
    assert real == sorted(real) and real[-1] > 98.99 and real[1] > 69.99
    assert summary["prediction"]["target_name"] == "bee"
    assert (out / "small" / "neuron_mct_s99.npy").is_file()
    # one threshold per activation call prunes each call by the requested share
    out2 = tmp_path / "per_layer"
    assert run_explain(files, out2, "--methods", "neuron_mct", "--threshold", "per_layer") == 0
    rec = json.loads((out2 / "small.json").read_text())["methods"]["neuron_mct"]
    assert rec["threshold"] == "per_layer" and rec["empty_calls"] == []


def test_model_by_name_with_shared_style_weights(files, tmp_path):
    out = tmp_path / "r20"
    args = ["explain", str(files["small.png"]), "--model", "resnet20"]
    args += ["--weights", str(files["resnet20.pt"]), "--methods", "gradient", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "small.json").read_text())
    assert summary["normalization"]["mean"] == [0.485, 0.456, 0.406]
    assert summary["prediction"]["name"] in (
        "airplane",
        "cat",
        "frog",
        "ship",
        "truck",
        "automobile",
        "bird",
        "deer",
        "dog",
        "horse",
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (["missing.png"], "image file not found"),
        (["notes.png"], "not a readable image file"),
        (["grey.png"], "grey-scale image (1 channel(s)) but the model takes 3"),
        (["small.png", "--methods", "gradient,magic"], "unknown method 'magic'"),
        (["small.png", "--sparsity", "100"], "--sparsity must lie in [0, 100)"),
        (["small.png", "--sparsity", "lots"], "--sparsity takes numbers"),
        (["small.png", "--sparsity", "70,90"], "sparsity sweep"),
        (["small.png", "--target", "zebra"], "--target 'zebra' is neither"),
        (["small.png", "--model", "resnet20"], "do not fit model resnet20"),
        (["small.png", "--model", "nonsense"], "unknown model 'nonsense'"),
        (["small.png", "--mean", "0.5,0.5"], "need 3 values"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(files, tmp_path, capsys, case, message):
    image, *extra = case
    path = str(files.get(image, tmp_path / image))
    args = ["explain", path, "--weights", str(files["weights.pt"]), "--out", str(tmp_path / "o")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.json"))


def test_grey_image_converted_on_request(files, tmp_path):
    args = ["explain", str(files["grey.png"]), "--weights", str(files["weights.pt"])]
    args += ["--out", str(tmp_path / "g"), "--methods", "gradient", "--convert-channels"]
    assert main(args) == 0
    assert (tmp_path / "g" / "grey.json").is_file()


def test_explain_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--model",
        "--weights",
        "--methods",
        "--sparsity",
        "--out",
        "--target",
        "--size",
    ):
        assert option in text
    assert "(default: 90)" in text and "(default: a fresh folder under explanations," in text
    assert "(default: neuron_mct, neuron_intgrad, gradient," in text


def test_bundled_demo_weights_by_name(files, tmp_path):
    out = tmp_path / "demo_w"
    args = ["explain", str(files["photo.jpg"]), "--weights", "demo", "--methods", "gradient"]
    assert main(args + ["--out", str(out)]) == 0
    summary = json.loads((out / "photo.json").read_text())
    assert summary["model"] == "vgg_tiny"
    from pathwaygrad.data import CIFAR10_CLASSES

    assert summary["prediction"]["name"] in CIFAR10_CLASSES


def test_explain_without_out_never_replaces_an_earlier_run(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["explain", str(files["small.png"]), "--weights", str(files["weights.pt"])]
    assert main(args + ["--methods", "gradient"]) == 0
    (first,) = (tmp_path / "explanations").iterdir()
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert (first / "small.json").is_file() and (first / "small" / "gradient.npy").is_file()
    assert main(args + ["--methods", "neuron_mct"]) == 0
    runs = sorted((tmp_path / "explanations").iterdir())
    assert len(runs) == 2
    # the first run's figure, JSON, maps and manifest are untouched; no map of the second in it
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert not (first / "small" / "neuron_mct.npy").exists()
    second = next(r for r in runs if r != first)
    assert json.loads((second / "manifest.json").read_text())["status"] == "finished"
    assert list(json.loads((second / "small.json").read_text())["methods"]) == ["neuron_mct"]


def test_out_holding_another_run_is_refused_unless_overwrite(files, tmp_path, capsys):
    out = tmp_path / "o"
    base = ["explain", str(files["small.png"]), "--weights", str(files["weights.pt"])]
    assert main(base + ["--methods", "gradient", "--out", str(out)]) == 0
    kept = (out / "small" / "gradient.npy").read_bytes()
    capsys.readouterr()
    assert main(base + ["--methods", "neuron_mct", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "small" / "gradient.npy").read_bytes() == kept
    assert not (out / "small" / "neuron_mct.npy").exists()
    assert main(base + ["--methods", "neuron_mct", "--out", str(out), "--overwrite"]) == 0
    assert (out / "small" / "neuron_mct.npy").is_file()
    assert not (out / "small" / "gradient.npy").exists()  # the replaced run's maps are gone


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("out_file", "is an existing file, not a folder"),
        ("size0", "--size must be a positive number of pixels, got 0"),
        ("text_weights", "cannot read weights file"),
        ("folder_image", "is a folder, not an image file"),
        ("activations", "--activations: unknown kind 'swishy'"),
        ("shared_other_model", "--weights shared holds CIFAR-10 ResNet-20/32/44/56 only"),
    ],
)
def test_errors_before_any_map_is_computed(files, tmp_path, capsys, monkeypatch, case, message):
    import pathwaygrad.explainee

    def no_maps(*a, **k):
        raise AssertionError("a map was computed before the input was checked")

    monkeypatch.setattr(pathwaygrad.explainee, "_explain_one", no_maps)
    out = tmp_path / "o"
    image = str(files["small.png"])
    args = ["--weights", str(files["weights.pt"])]
    if case == "out_file":
        out.write_text("an earlier result")
    elif case == "size0":
        args += ["--size", "0"]
    elif case == "text_weights":
        (tmp_path / "w.txt").write_text("hello")
        args = ["--model", "resnet20", "--weights", str(tmp_path / "w.txt")]
    elif case == "folder_image":
        image = str(tmp_path)
    elif case == "activations":
        args += ["--activations", "relu,swishy"]
    elif case == "shared_other_model":
        args = ["--model", "vgg_tiny", "--weights", "shared"]
    assert main(["explain", image, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    if case == "text_weights":
        assert str(tmp_path / "w.txt") in err and "torch.save" in err
    if case == "out_file":
        assert out.read_text() == "an earlier result"
    else:
        assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_refused_before_work(files, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        args = ["explain", str(files["small.png"]), "--weights", str(files["weights.pt"])]
        assert main(args + ["--out", str(ro / "x")]) == 2
        assert "cannot write into" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_shared_weights_by_name_and_bundled_photo(files, tmp_path, monkeypatch):
    shared = tmp_path / "shared" / "models" / "cifar10-resnet"
    shared.mkdir(parents=True)
    torch.save({"state_dict": build_model("resnet20").state_dict()}, shared / "resnet20-abc.th")
    monkeypatch.setenv("PATHWAYGRAD_SHARED", str(tmp_path / "shared"))
    out = tmp_path / "r20"
    args = ["explain", "skimage:chelsea", "--model", "resnet20", "--weights", "shared"]
    assert main(args + ["--methods", "gradient", "--out", str(out)]) == 0
    summary = json.loads((out / "chelsea.json").read_text())
    assert summary["weights"] == "shared" and summary["input_shape"] == [3, 32, 32]
    assert summary["image"] == "skimage:chelsea" and summary["pretrained"] is True


class GeluNet(torch.nn.Module):
    """A small CNN whose only activation is GELU (no ReLU call at all)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.act = torch.nn.GELU()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).mean(dim=(2, 3)))


def gelu_net() -> GeluNet:
    torch.manual_seed(0)
    return GeluNet()


def test_relu_only_method_left_out_by_default_and_refused_when_asked(files, tmp_path, capsys):
    """Guided Backprop's rule sits at ReLU calls: a model without any is explained without it
    by default (with a note), and asking for it is a one-line error before any work."""
    base = ["explain", str(files["small.png"]), "--model", "test_cli_explain:gelu_net"]
    assert main(base + ["--out", str(tmp_path / "default")]) == 0
    out = capsys.readouterr().out
    assert "leaving out guided_backprop" in out
    assert "using gelu" in out
    summary = (tmp_path / "default" / "small.json").read_text()
    assert "guided_backprop" not in summary
    assert "neuron_mct" in summary and "input_x_gradient" in summary

    asked = base + ["--methods", "gradient,guided_backprop", "--out", str(tmp_path / "asked")]
    assert main(asked) == 2
    err = capsys.readouterr().err
    assert "guided_backprop applies its rule at ReLU calls" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "asked").exists()

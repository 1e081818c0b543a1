"""``pathwaygrad explain``: figures, JSON and maps for real image files; bad input."""

from __future__ import annotations

import json
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
    assert "(default: 90)" in text and "(default: explanations)" in text
    assert "(default: neuron_mct, neuron_intgrad, gradient," in text


def test_bundled_demo_weights_by_name(files, tmp_path):
    out = tmp_path / "demo_w"
    args = ["explain", str(files["photo.jpg"]), "--weights", "demo", "--methods", "gradient"]
    assert main(args + ["--out", str(out)]) == 0
    summary = json.loads((out / "photo.json").read_text())
    assert summary["model"] == "vgg_tiny"
    from pathwaygrad.data import CIFAR10_CLASSES

    assert summary["prediction"]["name"] in CIFAR10_CLASSES

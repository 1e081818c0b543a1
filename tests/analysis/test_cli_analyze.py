"""``pathwaygrad analyze``: tables and figures from a model and an image folder; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pathwaygrad.cli.main import main


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHWAYGRAD_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for c in ("ant", "bee"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "data" / c / f"{i}.png")
    return tmp_path


def test_analyze_all_writes_tables_and_figures(folder):
    out = folder / "out"
    argv = [
        "analyze", "all", "--model", "vgg_tiny", "--data", str(folder / "data"),
        "--methods", "neuron_mct;random;greedy:step=30;dgr_ones", "--dgr-iterations", "3",
        "--sparsity", "50,90", "--n-images", "5", "--batch-size", "3",
        "--linearity-images", "2", "--directions", "2", "--linearity-sparsity", "90",
        "--decode-images", "1", "--decode-steps", "3", "--decode-sparsity", "90",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    with pytest.warns(UserWarning, match="max-pooling"):
        assert main(argv) == 0
    for name in ("overlap", "fidelity", "linearity"):
        assert (out / f"{name}.json").is_file()
        assert (out / f"{name}_per_example.csv").is_file()
    for name in ("overlap_jaccard", "overlap_dead", "overlap_layerwise", "fidelity", "linearity"):
        assert (out / f"{name}.csv").is_file()
    for fig in ("overlap_jaccard.png", "overlap_layerwise.png", "fidelity.png", "linearity.png",
                "decode_s90.png"):  # fmt: skip
        assert (out / fig).stat().st_size > 1000
    ov = json.loads((out / "overlap.json").read_text())
    assert ov["n_examples"] == 5
    assert ov["methods"] == ["neuron_mct", "random", "greedy(step=30)", "dgr(init=ones)"]
    assert ov["90.0"]["dead_share_mean"][0] == 0.0
    assert any("DGR(init=1): 3 iterations" in n for n in ov["config"]["notes"])
    lin = json.loads((out / "linearity.json").read_text())
    names = {r["pathway"] for r in lin["rows"]}
    assert names == {"full", "neuron_mct", "random", "dgr(init=ones)"}
    dec = json.loads((out / "decode.json").read_text())
    assert set(dec["class"]) == {"full", "neuron_mct", "random", "greedy(step=30)",
                                 "dgr(init=ones)"}  # fmt: skip


def test_analyze_errors(folder, capsys):
    assert main(["analyze", "overlap", "--data", str(folder / "data")]) == 2
    assert "--model" in capsys.readouterr().err
    argv = ["analyze", "overlap", "--model", "vgg_tiny", "--data", str(folder / "data")]
    assert main(argv + ["--sparsity", "100"]) == 2
    assert main(argv + ["--methods", "neuron_mct,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err

"""``pathwaygrad evaluate``: files written, presets overridable, errors as one line."""

from __future__ import annotations

import json

import pytest

from pathwaygrad.cli.main import main
from pathwaygrad.evaluation import read_csv


def _shared_available() -> bool:
    try:
        from pathwaygrad.data import shared_cifar10_archive
        from pathwaygrad.models.named import shared_weights_path

        shared_weights_path("resnet20")
        return shared_cifar10_archive() is not None
    except Exception:  # noqa: BLE001
        return False


needs_shared = pytest.mark.skipif(
    not _shared_available(), reason="needs ../shared data and weights"
)


@pytest.mark.shared
@needs_shared
def test_sanity_and_road_commands_write_results(tmp_path):
    assert (
        main(
            [
                "evaluate",
                "sanity",
                "--out",
                str(tmp_path),
                "--n-images",
                "4",
                "--methods",
                "gradient;edge",
                "--granularity",
                "blocks",
            ]
        )
        == 0
    )
    out = tmp_path / "sanity"  # one run folder per protocol
    rows = read_csv(out / "results.csv")
    assert {r["method"] for r in rows} == {"gradient", "edge"}
    assert len(rows) == 2 * 13  # original + 12 units of the ResNet-20, per method
    assert all(r["spearman"] == pytest.approx(1.0) for r in rows if r["method"] == "edge")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "sanity" and summary["settings"]["init"] == "paper"
    assert (out / "sanity.png").stat().st_size > 1000

    assert (
        main(
            [
                "evaluate",
                "road",
                "--out",
                str(tmp_path),
                "--n-images",
                "10",
                "--fractions",
                "10,50",
                "--methods",
                "edge;random_ranking",
            ]
        )
        == 0
    )
    out = tmp_path / "road"
    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 * 2 * 2 and (out / "road.png").exists()
    # the second protocol into the same --out left the first one's results alone
    assert len(read_csv(tmp_path / "sanity" / "results.csv")) == 2 * 13
    for protocol in ("sanity", "road"):
        manifest = json.loads((tmp_path / protocol / "manifest.json").read_text())
        assert manifest["status"] == "finished"
        assert manifest["command"] == f"evaluate {protocol}"
        assert json.loads((tmp_path / protocol / "command.json").read_text())["settings"]


@pytest.mark.shared
@needs_shared
def test_roar_command_resumes(tmp_path, capsys):
    args = [
        "evaluate",
        "roar",
        "--out",
        str(tmp_path),
        "--train-subset",
        "200",
        "--test-subset",
        "100",
        "--epochs",
        "1",
        "--fractions",
        "50",
        "--methods",
        "edge",
        "--executor",
        "sequential",
    ]
    assert main(args) == 0
    out = tmp_path / "roar"
    rows = read_csv(out / "results.csv")
    assert [r["method"] for r in rows] == ["base", "edge", "random_ranking"]
    assert (out / "roar.png").exists()
    before = {r["key"]: r["accuracy"] for r in rows}
    # a rerun reuses every cell, also with another executor (not part of the run's settings)
    assert main([*args[:-1], "local"]) == 0
    after = {r["key"]: r["accuracy"] for r in read_csv(out / "results.csv")}
    assert before == after


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["evaluate", "roar", "--out", str(tmp_path), "--fractions", "150"]) == 2
    err = capsys.readouterr().err
    assert "--fractions" in err and "Traceback" not in err
    assert main(["evaluate", "sanity", "--out", str(tmp_path), "--weights", "x.pt"]) == 2


def test_every_method_is_checked_before_any_work(tmp_path, capsys):
    # a bad name after a good one: refused before the gradient protocol (or any loading) starts
    code = main(["evaluate", "perturbation", "--out", str(tmp_path), "--methods", "gradient;foo"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'foo'" in err and "Traceback" not in err
    assert not (tmp_path / "perturbation").exists()
    # a bad option value too
    code = main(
        ["evaluate", "roar", "--out", str(tmp_path), "--methods", "neuron_mct:sparsity=150"]
    )
    assert code == 2 and "sparsity" in capsys.readouterr().err
    assert not (tmp_path / "roar").exists()
    # Ray options without the Ray executor are a one-line error, before any work
    code = main(["evaluate", "roar", "--out", str(tmp_path), "--ray-address", "auto"])
    assert code == 2 and "--executor ray" in capsys.readouterr().err


def test_tables_print_method_names_whole():
    from pathwaygrad.evaluation.runner import print_rows

    lines: list[str] = []
    rows = [
        {"method": "neuron_mct(sparsity=90)", "area": 0.25},
        {"method": "NeuronIntGrad(steps=10)", "area": 0.5},
    ]
    print_rows(rows, ["method", "area"], lines.append)
    text = "\n".join(lines)
    assert "neuron_mct(sparsity=90)" in text and "NeuronIntGrad(steps=10)" in text
    assert "0.2500" in text and len(lines) == 3


@pytest.mark.shared
@pytest.mark.slow
@needs_shared
def test_perturbation_ranks_by_abs_by_default_and_says_so(tmp_path, capsys):
    args = ["evaluate", "perturbation", "--out", str(tmp_path), "--n-images", "4"]
    args += ["--methods", "edge", "--no-curves"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ranking pixels by |map|" in out and "(default)" in out
    summary = json.loads((tmp_path / "perturbation" / "summary.json").read_text())
    assert summary["settings"]["rank_by"] == "abs"
    # --rank-by max into the same folder is another run: refused, the first run kept
    assert main([*args, "--rank-by", "max"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--rank-by", "max", "--overwrite"]) == 0
    assert "ranking pixels by the signed maximum" in capsys.readouterr().out
    summary = json.loads((tmp_path / "perturbation" / "summary.json").read_text())
    assert summary["settings"]["rank_by"] == "max"


def test_sanity_uses_the_papers_initialisation_by_default():
    from pathwaygrad.evaluation import runner
    from pathwaygrad.evaluation.sanity import DEFAULT_INIT

    preset = runner._preset("quick")
    s = runner.EvaluationSettings()
    assert DEFAULT_INIT == "paper"
    assert runner._resolved("sanity", s, preset)["init"] == DEFAULT_INIT
    s = runner.EvaluationSettings(init="default")
    assert runner._resolved("sanity", s, preset)["init"] == "default"

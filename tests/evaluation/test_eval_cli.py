"""``pathwaygrad evaluate``: files written, presets overridable, errors as one line."""

from __future__ import annotations

import json

import pytest

from pathwaygrad.cli.main import main
from pathwaygrad.evaluation import read_csv


def _shared_available() -> bool:
    try:
        from pathwaygrad.cli.evaluate import _pretrained_resnet20
        from pathwaygrad.data import shared_cifar10_archive

        _pretrained_resnet20()
        return shared_cifar10_archive() is not None
    except Exception:  # noqa: BLE001
        return False


needs_shared = pytest.mark.skipif(
    not _shared_available(), reason="needs ../shared data and weights"
)


@pytest.mark.shared
@needs_shared
def test_sanity_and_road_commands_write_results(tmp_path):
    out = tmp_path / "sanity"
    assert (
        main(
            [
                "evaluate",
                "sanity",
                "--out",
                str(out),
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
    rows = read_csv(out / "results.csv")
    assert {r["method"] for r in rows} == {"gradient", "edge"}
    assert len(rows) == 2 * 13  # original + 12 units of the ResNet-20, per method
    assert all(r["spearman"] == pytest.approx(1.0) for r in rows if r["method"] == "edge")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "sanity" and summary["settings"]["init"] == "paper"
    assert (out / "sanity.png").stat().st_size > 1000

    out = tmp_path / "road"
    assert (
        main(
            [
                "evaluate",
                "road",
                "--out",
                str(out),
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
    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 * 2 * 2 and (out / "road.png").exists()


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
    rows = read_csv(tmp_path / "results.csv")
    assert [r["method"] for r in rows] == ["base", "edge", "random_ranking"]
    assert (tmp_path / "roar.png").exists()
    before = {r["key"]: r["accuracy"] for r in rows}
    assert main(args) == 0  # a rerun reuses every cell
    after = {r["key"]: r["accuracy"] for r in read_csv(tmp_path / "results.csv")}
    assert before == after


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["evaluate", "roar", "--out", str(tmp_path), "--fractions", "150"]) == 2
    err = capsys.readouterr().err
    assert "--fractions" in err and "Traceback" not in err
    assert main(["evaluate", "sanity", "--out", str(tmp_path), "--weights", "x.pt"]) == 2

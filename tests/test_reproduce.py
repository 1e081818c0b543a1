"""The whole reproduction pipeline on the tiny preset (synthetic data, tiny model)."""

from __future__ import annotations

import json
import re
import shutil

from pathwaygrad.cli.main import main
from pathwaygrad.reproduce.claims import FAILS, HOLDS, INCONCLUSIVE, lerf, roar
from pathwaygrad.reproduce.presets import PRESETS
from pathwaygrad.reproduce.report import write_report
from pathwaygrad.reproduce.run import plan


def test_tiny_reproduction_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert "## Verdicts" in report and "pathwaygrad reproduce --preset tiny" in report
    assert len(results["verdicts"]) == 6
    assert {v["verdict"] for v in results["verdicts"]} <= {HOLDS, FAILS, INCONCLUSIVE}
    # measured, not assumed: contribution pathways hold no dead neuron on any model
    assert results["verdicts"][0]["verdict"] == HOLDS
    for key in ("torch", "captum", "pathwaygrad"):
        assert key in results["environment"]
    figures = list((out / "figures").glob("*.png"))
    assert len(figures) >= 6
    # every figure the report links exists
    links = re.findall(r"\]\((figures/[^)]+\.png)\)", report)
    assert len(links) >= 6
    for link in links:
        assert (out / link).is_file(), link
    # rerun: every step is kept, nothing recomputed
    capsys.readouterr()
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert log.count("done before, kept") == len(results["steps"])

    # a second model's sweep, sanity checks and LeRF / MoRF get their own sections and figures
    for folder in [
        *out.glob("sweep_tiny"),
        *out.glob("sanity_tiny_*"),
        *out.glob("perturbation_tiny*"),
    ]:
        shutil.copytree(folder, out / folder.name.replace("tiny", "tiny_b", 1))
    models = {**results["models"], "tiny_b": results["models"]["tiny"]}
    write_report(out, PRESETS["tiny"], models, None, results["steps"], results["environment"], 0.0)
    report = (out / "report.md").read_text()
    assert report.count("### tiny_b") == 3 and report.count("### tiny\n") == 3
    links = re.findall(r"\]\((figures/[^)]+\.png)\)", report)
    assert any("tiny_b" in link for link in links)
    for link in links:
        assert (out / link).is_file(), link


def test_plan_runs_sweep_sanity_and_lerf_on_every_model_of_the_paper_preset():
    models = {"resnet20": ("resnet20", "r20.th"), "resnet56": ("resnet56", "r56.th")}
    paper = {s.key for s in plan(PRESETS["paper"], models, None, None)}
    quick = {s.key for s in plan(PRESETS["quick"], models, None, None)}
    for name in models:
        for key in ("sweep_{}", "sanity_{}_paper", "sanity_{}_default", "perturbation_{}",
                    "perturbation_{}_abs", "analysis_{}"):  # fmt: skip
            assert key.format(name) in paper
    assert "analysis_resnet56" in quick and "sanity_resnet20_default" in quick
    assert not any(
        k.endswith("resnet56") or "resnet56_" in k for k in quick - {"analysis_resnet56"}
    )


def test_claim_rules_on_known_tables():
    acc = {("neuron_mct", 0.9): 0.40, ("neuron_intgrad", 0.9): 0.42, ("gradient", 0.9): 0.70,
           ("guided_backprop", 0.9): 0.72, ("integrated_gradients", 0.9): 0.75}  # fmt: skip
    assert roar({"acc": acc, "std": {}, "base": 0.8}).verdict == HOLDS
    flipped = {k: (1 - v if k[0].startswith("neuron") else v - 0.5) for k, v in acc.items()}
    assert roar({"acc": flipped, "std": {}, "base": 0.8}).verdict == FAILS
    assert roar({"acc": acc, "std": {}, "base": 0.2}).verdict == INCONCLUSIVE
    drops = {"neuron_mct": 0.15, "neuron_intgrad": 0.14, "gradient": 0.5, "guided_backprop": 0.4,
             "integrated_gradients": 0.25, "input_x_gradient": 0.25}  # fmt: skip
    assert lerf(drops).verdict == HOLDS
    assert lerf({**drops, "gradient": 0.1}).verdict == INCONCLUSIVE

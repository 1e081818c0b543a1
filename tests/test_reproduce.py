"""The reproduction: presets, plan, claim rules, the claim report, and the tiny end-to-end run."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pathwaygrad.presets import (
    CLAIM_BASELINES,
    EVALUATION,
    PAPER_METHODS,
    PATHWAY_METHODS,
    REPRODUCTION,
    method_list,
)
from pathwaygrad.reproduce.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    ROAR_MARGIN,
    below,
    lerf,
    roar,
    roar_claim,
    sanity,
)
from pathwaygrad.reproduce.run import plan

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ presets
def test_claim_preset_is_the_claim_run():
    """The `claim` preset encodes the settings of the issue-16 run ."""
    p = REPRODUCTION["claim"]
    r = p.retrain
    assert p.experiments == ("roar",) and p.report == "claim"
    assert (r.model, r.widths, r.channels_last) == ("resnet8", (16, 32, 64), True)
    assert (r.train_subset, r.test_subset, r.val_fraction) == (None, None, 0.1)  # 45k / 5k / 10k
    assert r.train_kwargs() == {
        "epochs": 15,
        "batch_size": 256,
        "lr": 4e-3,
        "schedule": "onecycle",
    }
    assert (r.executor, r.train_threads) == ("local", 1)  # two one-thread cells at a time
    assert r.methods == (
        "gradient;guided_backprop;integrated_gradients:n_steps=16;"
        "neuron_mct:sparsity=90;neuron_intgrad:sparsity=90"
    )
    assert r.include_random and r.rank_by == "abs" and r.modes == ("roar",)
    assert r.fractions == (50.0, 90.0) and r.fraction_stages() == ((90.0,), (50.0, 90.0))
    assert (r.repeats, r.seed, r.map_batch_size) == (1, 0, 64)


def test_quick_preset_values_unchanged():
    """The quick preset keeps the values of the committed quick report (issue 14)."""
    q = REPRODUCTION["quick"]
    assert (q.analysis_images, q.other_model_images, q.eval_models) == (100, 24, 1)
    assert (q.dgr_iterations, q.dgr_lr, q.greedy_step, q.intgrad_steps) == (100, 0.1, 5.0, 10)
    assert (q.sanity_images, q.sanity_sparsity, q.perturbation_images) == (16, 70.0, 100)
    assert set(q.sanity_inits) == {"paper", "default"}
    assert method_list(q.sanity_methods, 70) == (
        "gradient;guided_backprop;grad_cam;input_x_gradient;integrated_gradients;"
        "neuron_mct:sparsity=70;neuron_intgrad:sparsity=70"
    )
    r = q.retrain
    assert (r.widths, r.train_subset, r.test_subset, r.epochs, r.batch_size) == (
        (16, 32, 64),
        2000,
        500,
        4,
        64,
    )
    assert r.train_kwargs() == {"epochs": 4, "batch_size": 64}  # same cell keys as before
    assert (r.fractions, r.repeats, r.modes, r.rank_by) == (
        (10.0, 50.0, 90.0),
        1,
        ("roar", "kar"),
        "max",
    )
    assert r.methods == method_list((*CLAIM_BASELINES, *PATHWAY_METHODS), 90)
    assert EVALUATION["paper"].methods == ";".join(PAPER_METHODS)
    assert EVALUATION["quick"].n_images("sanity") == 16
    assert method_list(("neuron_intgrad:steps=2", "gradient"), 90) == (
        "neuron_intgrad:sparsity=90,steps=2;gradient"
    )


def _models(tmp_path):
    files = {}
    for name in ("resnet20", "resnet56"):
        f = tmp_path / f"{name}.th"
        f.write_bytes(name.encode())
        files[name] = (name, str(f))
    return files


def test_plan_runs_sweep_sanity_and_lerf_on_every_model_of_the_paper_preset(tmp_path):
    models = _models(tmp_path)
    paper = {s.key for s in plan(REPRODUCTION["paper"], models, None)}
    quick = {s.key for s in plan(REPRODUCTION["quick"], models, None)}
    for name in models:
        for key in ("sweep_{}", "sanity_{}_paper", "sanity_{}_default", "perturbation_{}",
                    "perturbation_{}_abs", "analysis_{}"):  # fmt: skip
            assert key.format(name) in paper
    assert "analysis_resnet56" in quick and "sanity_resnet20_default" in quick
    assert "draws_resnet20" in quick
    assert not any(
        k.endswith("resnet56") or "resnet56_" in k for k in quick - {"analysis_resnet56"}
    )
    only = [s.key for s in plan(REPRODUCTION["quick"], models, None, experiments=("sanity",))]
    assert only == ["sanity_resnet20_paper", "sanity_resnet20_default"]  # headline first
    assert [s.key for s in plan(REPRODUCTION["claim"], {}, None)] == ["roar_kar"]


def test_no_module_of_reproduce_uses_the_command_line():
    src = ROOT / "src" / "pathwaygrad"
    for f in [*sorted((src / "reproduce").glob("*.py")), src / "presets.py"]:
        text = f.read_text()
        assert "pathwaygrad.cli" not in text, f
        assert "argparse" not in text, f


# -------------------------------------------------------------------------------- claim rules
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


def test_roar_claim_rule_and_its_margin():
    acc = {("neuron_mct", 0.9): 0.44, ("neuron_intgrad", 0.9): 0.48, ("gradient", 0.9): 0.755,
           ("guided_backprop", 0.9): 0.748, ("integrated_gradients", 0.9): 0.809}  # fmt: skip
    table = {"acc": acc, "std": {}, "base": 0.80}
    v = roar_claim(table)
    assert v.verdict == HOLDS and "26.8 to 36.9 points" in v.reason
    # a gap within the margin (one retrain per cell: 3 points) is not a difference
    close = {**acc, ("neuron_intgrad", 0.9): 0.748 - ROAR_MARGIN + 0.001}
    v = roar_claim({**table, "acc": close})
    assert v.verdict == FAILS and "neuron_intgrad vs guided_backprop" in v.reason
    assert roar_claim({**table, "acc": {**acc, ("neuron_mct", 0.9): 0.9}}).verdict == FAILS
    # a base model that has not learned (issue 16: >= 75 %) decides nothing
    assert roar_claim({**table, "base": 0.74}).verdict == INCONCLUSIVE
    missing = {k: v for k, v in acc.items() if k[0] != "gradient"}
    assert roar_claim({**table, "acc": missing}).verdict == INCONCLUSIVE
    # with repeats, the margin is the sum of the sds
    sd = {k: 0.2 for k in acc}
    assert roar_claim({**table, "std": sd}).verdict == FAILS


def _st(mean, sd):
    return {"mean": mean, "sd": sd, "min": mean - sd, "max": mean + sd, "n": 5}


def test_sanity_rule_uses_the_spread_and_both_conventions():
    signed = {"neuron_mct": _st(0.04, 0.12), "neuron_intgrad": _st(0.05, 0.1),
              "guided_backprop": _st(0.90, 0.01), "gradient": _st(0.05, 0.15),
              "grad_cam": _st(0.3, 0.1)}  # fmt: skip
    quantus = {"neuron_mct": _st(0.45, 0.03), "neuron_intgrad": _st(0.47, 0.03),
               "guided_backprop": _st(0.94, 0.01), "gradient": _st(0.39, 0.03),
               "grad_cam": _st(0.3, 0.1)}  # fmt: skip
    last = {"neuron_mct": _st(0.01, 0.01)}
    table = {
        "seeds": 5,
        "first": {"spearman": signed, "spearman_abs_full": quantus},
        "last": {"spearman": last, "spearman_abs_full": last},
    }
    assert below(signed, "neuron_mct", "guided_backprop")
    assert not below(signed, "neuron_mct", "gradient")  # a difference inside the spread
    v = sanity({"paper": table}, ("paper",))
    assert v.verdict == HOLDS
    assert "not below" in v.reason and "gradient" in v.reason  # says which baselines it beats
    assert "spearman_abs_full" in v.reason and "spearman:" not in v.ours
    # GBP inside the spread of pathway gradient under one convention: the claim does not hold
    quantus_bad = {**quantus, "guided_backprop": _st(0.5, 0.1)}
    table_bad = {**table, "first": {"spearman": signed, "spearman_abs_full": quantus_bad}}
    assert sanity({"paper": table_bad}).verdict == FAILS


# --------------------------------------------------------------------------- the claim report
def _write_results(folder: Path, rows: list[tuple[str, str, float, float]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["protocol", "method", "fraction", "repeat", "seed", "accuracy", "seconds"])
        for proto, method, fraction, acc in rows:
            w.writerow([proto, method, fraction, 0, 0, acc, 100.0])


def _claim_rows(mct: float) -> list:
    rows = [("base", "base", 0.0, 0.80)]
    for f, accs in ((0.5, (0.78, 0.77, 0.80, 0.70, 0.69, 0.79)),
                    (0.9, (0.755, 0.748, 0.809, mct, 0.48, 0.75))):  # fmt: skip
        names = ("gradient", "guided_backprop", "integrated_gradients:n_steps=16",
                 "neuron_mct(sparsity=90)", "neuron_intgrad(sparsity=90)", "random_ranking")  # fmt: skip
        rows += [("roar", n, f, a) for n, a in zip(names, accs)]
    return rows


def test_claim_report_from_a_run_folder(tmp_path):
    from pathwaygrad.reproduce.claim import load_claim, write_claim_report

    run = tmp_path / "run"
    _write_results(run, _claim_rows(0.44))
    out = tmp_path / "claim"
    res = write_claim_report(run, out)
    assert res["verdict"]["verdict"] == HOLDS
    assert res["base_accuracy"] == 0.80 and res["cells_done"] == 12 == res["cells_expected"]
    report = (out / "report.md").read_text()
    assert "**Verdict: holds.**" in report and "80.00 %" in report
    assert "44.00 (44.39)" in report and "| Random ranking |" in report
    assert (out / "figures" / "roar.png").is_file()
    assert str(tmp_path) not in report and str(tmp_path) not in (out / "results.json").read_text()
    loaded = load_claim(out / "results.json")
    assert loaded["acc"][("neuron_mct", 0.9)] == 0.44 and loaded["base"] == 0.80
    # the same from the command line, for a run that does not support the claim
    _write_results(run, _claim_rows(0.74))
    proc = subprocess.run(
        [sys.executable, "-m", "pathwaygrad.cli.main", "reproduce", "--preset", "claim",
         "--report-from", str(run), "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "results.json").read_text())["verdict"]["verdict"] == FAILS


def test_claim_report_of_a_run_in_progress_says_so(tmp_path):
    """Only the base model finished: the report gives its accuracy, no table, and no verdict."""
    from pathwaygrad.reproduce.claim import write_claim_report

    run = tmp_path / "run"
    _write_results(run, [("base", "base", 0.0, 0.7727)])
    res = write_claim_report(run, tmp_path / "claim")
    assert res["verdict"]["verdict"] == INCONCLUSIVE and res["cells_done"] == 0
    report = (tmp_path / "claim" / "report.md").read_text()
    assert "77.27 %" in report and "No retrain cell has finished yet" in report
    assert "| method |  |" not in report


def test_quick_report_roar_section_shows_the_claim_run_as_far_as_it_went(tmp_path):
    """The quick report's ROAR section: no table while no claim cell has finished; a missing
    cell shows as "-" (with the paper's figure) beside the finished ones."""
    from pathwaygrad.reproduce.report import _roar_section

    verdict = {"verdict": INCONCLUSIVE, "reason": "cells at t = 90 % missing"}
    lines: list[str] = []
    _roar_section({"claim": {"verdict": verdict, "base": 0.7727, "acc": {}}}, lines, tmp_path)
    text = "\n".join(lines)
    assert "77.3 %" in text and "No retrain cell of the claim run has finished yet" in text
    assert "| method |" not in text
    acc = {("gradient", 0.9): 0.5, ("neuron_mct", 0.9): 0.4, ("gradient", 0.5): 0.7}
    lines = []
    _roar_section({"claim": {"verdict": verdict, "base": 0.7727, "acc": acc}}, lines, tmp_path)
    text = "\n".join(lines)
    assert "| method | t=50 % | t=90 % |" in text and "No retrain cell" not in text
    assert "| NeuronMCT | - (65.5) | 40.0 (44.4) |" in text


@pytest.mark.slow
def test_tiny_claim_preset_runs_and_writes_its_report(tmp_path):
    """A tiny version of the `claim` preset: the same code path, a tiny ResNet-8, 1 epoch."""
    from pathwaygrad.reproduce import reproduce
    from pathwaygrad.reproduce.tiny import make_tiny

    _, data = make_tiny(tmp_path / "tiny")
    claim = REPRODUCTION["claim"]
    tiny = dataclasses.replace(
        claim,
        name="claim-tiny",
        retrain=dataclasses.replace(
            claim.retrain,
            # channels-last convolutions of 4 channels hang in torch 2.14.1's CPU backward
            # (0.06 s per step in the default layout, > 60 s channels-last); 8 runs in 0.1 s
            widths=(8, 8, 16),
            train_subset=80,
            test_subset=40,
            epochs=1,
            methods=method_list(("gradient", "neuron_mct"), 90.0),
        ),
    )
    out = tmp_path / "claim"
    res = reproduce(tiny, data=data, out=out)
    assert res["cells_done"] == res["cells_expected"] == 2 * 3
    assert res["verdict"]["verdict"] == INCONCLUSIVE  # the tiny model learned too little
    assert (out / "report.md").is_file() and (out / "roar_kar" / "results.csv").is_file()
    # resumable: a rerun trains nothing
    cells = sorted((out / "roar_kar" / "cells").glob("*.json"))
    stamps = [c.stat().st_mtime_ns for c in cells]
    reproduce(tiny, data=data, out=out)
    assert [c.stat().st_mtime_ns for c in cells] == stamps


# --------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_tiny_reproduction_end_to_end_and_resume(tmp_path, capsys):
    from pathwaygrad.cli.main import main
    from pathwaygrad.reproduce.claim import write_claim_report
    from pathwaygrad.reproduce.report import write_report

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
    # no absolute path of this machine in the report or its results
    assert str(tmp_path) not in report and str(tmp_path) not in json.dumps(results)
    # sanity: spread over the preset's seeds, both conventions, headline = the paper's init
    assert "2 seeds of the randomisation" in report
    assert "**Headline**: re-initialisation `paper`" in report
    assert "Quantus default" in report and "Every randomisation step" in report
    assert "## Numbers that depend on a random draw" in report
    # step labels and KAR caption
    assert "(sparsity sweep figure)" not in report
    assert "KAR keeps the top t % pixels" in report
    assert "remove_and_retrain" in report
    figures = list((out / "figures").glob("*.png"))
    assert len(figures) >= 6
    links = re.findall(r"\]\((figures/[^)]+\.png)\)", report)
    assert len(links) >= 6
    for link in links:
        assert (out / link).is_file(), link
    # rerun: every step is kept, nothing recomputed
    capsys.readouterr()
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert log.count("done before, kept") == len(results["steps"])

    # a claim run's results decide the ROAR verdict (and are copied beside the report)
    run = tmp_path / "claim-run"
    _write_results(run, _claim_rows(0.44))
    write_claim_report(run, tmp_path / "claim")
    assert main(["reproduce", "--preset", "tiny", "--out", str(out),
                 "--claim", str(tmp_path / "claim" / "results.json")]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    roar_verdict = results["verdicts"][2]
    assert roar_verdict["verdict"] == HOLDS and "ROAR" in roar_verdict["claim"]
    assert (out / "claim" / "report.md").is_file()
    assert "[claim/report.md](claim/report.md)" in (out / "report.md").read_text()

    # a second model's sweep, sanity checks and LeRF / MoRF get their own sections and figures
    for folder in [
        *out.glob("sweep_tiny"),
        *out.glob("sanity_tiny_*"),
        *out.glob("perturbation_tiny*"),
    ]:
        shutil.copytree(folder, out / folder.name.replace("tiny", "tiny_b", 1))
    models = {"tiny": ("vgg_tiny", str(out / "tiny" / "vgg_tiny.pt"))}
    models["tiny_b"] = models["tiny"]
    write_report(out, REPRODUCTION["tiny"], models, None, results["steps"], results["environment"], 0.0)  # fmt: skip
    report = (out / "report.md").read_text()
    assert report.count("### tiny_b") == 3 and report.count("### tiny\n") == 3
    links = re.findall(r"\]\((figures/[^)]+\.png)\)", report)
    assert any("tiny_b" in link for link in links)
    for link in links:
        assert (out / link).is_file(), link

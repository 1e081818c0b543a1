"""Runs every experiment of the paper (section 3) as resumable steps, then writes the report.

Each step is one ``pathwaygrad analyze`` / ``pathwaygrad evaluate`` command (or the sparsity-sweep
figure) writing into its own folder under ``out``. A finished step leaves ``step.json`` (written
atomically, with the command and its duration): a rerun skips it, so an interrupted reproduction
continues where it stopped (ROAR / KAR also keep their finished cells inside a step).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pathwaygrad._io import atomic_write_text
from pathwaygrad.errors import UserError
from pathwaygrad.reproduce.presets import PRESETS, Preset, methods


@dataclass
class Step:
    key: str  # folder name under out/
    title: str
    argv: list[str] | None = None  # a pathwaygrad command ...
    func: Callable[[Path], None] | None = None  # ... or a function of the step folder
    settings: dict | None = None  # what a function step depends on (a change reruns it)


def _atomic_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def _models(preset: Preset, models_dir, data, out: Path) -> tuple[dict, str | None]:
    """{name: (architecture, weights file)} and the data path for the analysed models."""
    if preset.name == "tiny":
        from pathwaygrad.reproduce.tiny import make_tiny

        return make_tiny(out / "tiny")
    from pathwaygrad.data import shared_dir

    if models_dir is None:
        shared = shared_dir()
        if shared is None:
            raise UserError(
                "no --models folder given and ../shared/models/cifar10-resnet is not here: pass "
                "--models PATH (a folder with resnet20-*.th / resnet56-*.th)"
            )
        models_dir = shared / "models" / "cifar10-resnet"
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise UserError(f"--models {models_dir} is not a folder")
    found = {}
    for name in preset.models:
        files = sorted(models_dir.glob(f"{name}-*.th")) + sorted(models_dir.glob(f"{name}.th"))
        if not files:
            raise UserError(
                f"no weights for {name} in {models_dir} (expected {name}-<hash>.th); "
                "pass --models with the pretrained CIFAR ResNets"
            )
        found[name] = (name, str(files[0]))
    return found, None if data is None else str(data)


def plan(preset: Preset, models: dict, data: str | None, threads: int | None) -> list[Step]:
    """The steps of a reproduction, in the order they run."""
    common = ["--seed", "0"] + (["--data", data] if data else [])
    thr = ["--threads", str(threads)] if threads else []
    names = list(models)
    steps = []
    for i, name in enumerate(names):
        a, w = models[name]
        analyses = "all" if i == 0 else "overlap"
        n = preset.analysis_images if i == 0 else preset.other_model_images
        if n <= 0:
            continue
        argv = [
            "analyze", analyses, "--model", a, "--weights", w, *common, *thr,
            "--n-images", str(n),
            "--sparsity", ",".join(f"{s:g}" for s in preset.sparsities),
            "--methods", "neuron_intgrad,neuron_mct,dgr_ones,dgr_random,greedy,random",
            "--dgr-iterations", str(preset.dgr_iterations),
            "--dgr-lr", str(preset.dgr_lr),
            "--greedy-step", str(preset.greedy_step),
            "--intgrad-steps", str(preset.intgrad_steps),
            "--preset", "quick" if preset.name != "paper" else "paper",
            "--no-progress",
        ]  # fmt: skip
        if i == 0:
            argv += [
                "--linearity-methods", "neuron_mct,random,dgr_ones",
                "--linearity-sparsity", f"{preset.pathway_sparsity:g}",
                "--linearity-images", str(preset.linearity_images),
                "--directions", str(preset.directions),
                "--decode-sparsity", "98",
                "--decode-images", str(preset.decode_images),
                "--decode-steps", str(preset.decode_steps),
            ]  # fmt: skip
        steps.append(
            Step(f"analysis_{name}", f"Pathway analysis (3.1, 3.2, section 4) on {name}", argv)
        )
    n_eval = len(names) if preset.eval_models is None else preset.eval_models
    for name in names[:n_eval]:
        steps += _model_steps(preset, name, *models[name], data, common)
    steps.append(
        Step(
            "roar_kar",
            "ROAR and KAR (3.5): remove / keep the top pixels and retrain",
            func=lambda d: _retrain(d, data, preset),
            settings={
                k: v
                for k, v in preset.as_dict().items()
                if k.startswith("roar") or k == "pathway_sparsity"
            },
        )
    )
    return steps


def _model_steps(preset: Preset, name: str, arch: str, weights: str, data, common) -> list[Step]:
    """Sparsity sweep (3.3), sanity checks (3.4) and LeRF / MoRF (3.6) on one model."""
    model_args = ["--model", arch, "--weights", weights]
    steps = [
        Step(
            f"sweep_{name}",
            f"Sparsity sweep (3.3) on {name}",
            func=lambda d: _sweep(d, arch, weights, data, preset),
            settings={
                "weights": weights,
                "sparsities": preset.sweep_sparsities,
                "images": preset.sweep_images,
            },
        )
    ]
    for init in preset.sanity_inits:
        steps.append(
            Step(
                f"sanity_{name}_{init}",
                f"Sanity check (3.4), cascading, init={init}, on {name}",
                [
                    "evaluate",
                    "sanity",
                    *model_args,
                    *common,
                    "--n-images",
                    str(preset.sanity_images),
                    "--init",
                    init,
                    "--mode",
                    "cascading",
                    "--methods",
                    methods(preset.sanity_methods, preset.sanity_sparsity),
                ],
            )  # fmt: skip
        )
    # The paper leaves open whether maps were made absolute before ranking: run both.
    for rank_by, suffix in (("max", ""), ("abs", "_abs")):
        steps.append(
            Step(
                f"perturbation_{name}{suffix}",
                f"LeRF / MoRF pixel perturbation (3.6) on {name}, pixels ranked by {rank_by}",
                [
                    "evaluate",
                    "perturbation",
                    *model_args,
                    *common,
                    "--n-images",
                    str(preset.perturbation_images),
                    "--methods",
                    methods(preset.saliency_methods, preset.pathway_sparsity) + ";random_ranking",
                    "--rank-by",
                    rank_by,
                ],
            )  # fmt: skip
        )
    return steps


def _retrain(folder: Path, data: str | None, preset: Preset) -> None:
    from pathwaygrad.reproduce.retrain import roar_and_kar

    roar_and_kar(folder, data, preset)


def _sweep(folder: Path, arch: str, weights: str, data: str | None, preset: Preset) -> None:
    from pathwaygrad.reproduce.sweep import sparsity_sweep

    sparsity_sweep(folder, arch, weights, data, preset.sweep_sparsities, preset.sweep_images)


def _plain(obj):
    """JSON round trip, so a stored record compares equal to a fresh one (tuples become lists)."""
    return json.loads(json.dumps(obj, default=str))


def run_step(step: Step, out: Path) -> dict:
    """Run one step unless it already finished; returns its record."""
    folder = out / step.key
    record_path = folder / "step.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("argv") == step.argv and record.get("settings") == _plain(step.settings):
            print(f"[reproduce] {step.key}: done before, kept ({record['seconds']:.0f} s)")
            return record
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[reproduce] {step.key}: {step.title}", flush=True)
    start = time.perf_counter()
    if step.argv is not None:
        from pathwaygrad.cli.main import main

        code = main([*step.argv, "--out", str(folder)])
        if code:
            raise UserError(
                f"step {step.key} failed (exit {code}): pathwaygrad {' '.join(step.argv)}"
            )
    else:
        step.func(folder)
    record = {
        "key": step.key,
        "title": step.title,
        "argv": step.argv,
        "settings": _plain(step.settings),
        "seconds": time.perf_counter() - start,
    }
    _atomic_json(record_path, record)
    return record


def environment() -> dict:
    import captum
    import numpy
    import torch

    from pathwaygrad import __version__

    return {
        "pathwaygrad": __version__,
        "torch": torch.__version__,
        "captum": captum.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }


def reproduce(
    preset: str = "quick",
    data=None,
    models=None,
    out="reproduction",
    threads: int | None = None,
) -> dict:
    """Run the paper's experiments with ``preset`` and write ``report.md`` + ``results.json``."""
    from pathwaygrad.reproduce.report import write_report

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[preset]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_files, data_path = _models(p, models, data, out)
    steps = plan(p, model_files, data_path, threads)
    print(
        f"[reproduce] preset {p.name}: {len(steps)} steps, expected about "
        f"{p.expected_minutes:g} minutes on 2 CPU cores; resumable: rerun the same command "
        f"after an interruption",
        flush=True,
    )
    started = time.perf_counter()
    records = [run_step(s, out) for s in steps]
    elapsed = time.perf_counter() - started
    return write_report(out, p, model_files, data_path, records, environment(), elapsed)

"""Runs every experiment of the paper (section 3) as resumable steps, then writes the report.

Each step is one library call (:mod:`.steps`) writing into its own folder under ``out``. A
finished step leaves ``step.json`` (written atomically, with its settings and duration): a rerun
with the same settings skips it, so an interrupted reproduction continues where it stopped
(ROAR / KAR also keep their finished cells inside a step). A step whose settings changed runs
again.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pathwaygrad._io import clean_json, load_json, write_bytes, write_json
from pathwaygrad.errors import UserError
from pathwaygrad.presets import REPRODUCTION, ReproductionPreset
from pathwaygrad.reproduce import steps as S

EXPERIMENTS = ("analysis", "draws", "sweep", "sanity", "perturbation", "roar")


@dataclass
class Step:
    key: str  # folder name under out/
    title: str
    experiment: str  # one of EXPERIMENTS
    func: Callable[[Path], None]  # the library call, given the step folder
    settings: dict = field(default_factory=dict)  # what its results depend on (a change reruns it)
    call: str = ""  # the call, in words, for the report


def _file_id(path: str) -> dict:
    """A weights file by name and content (a rerun with other weights of the same name reruns)."""
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]
    return {"file": Path(path).name, "sha1": digest}


def _models(preset: ReproductionPreset, models_dir, data, out: Path) -> tuple[dict, str | None]:
    """{name: (architecture, weights file)} and the data path for the analysed models."""
    if not preset.models:
        return {}, None if data is None else str(data)
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


def plan(
    preset: ReproductionPreset,
    models: dict,
    data: str | None,
    executor=None,
    experiments: Sequence[str] | None = None,
    data_label: str | None = None,
) -> list[Step]:
    """The steps of a reproduction, in the order they run.

    ``experiments``: run only these (default: the preset's); the others are left out of the plan.
    ``data_label``: how the data is named in the step records (default ``data`` as given).
    """
    chosen = tuple(preset.experiments if experiments is None else experiments)
    unknown = [e for e in chosen if e not in EXPERIMENTS]
    if unknown:
        raise UserError(f"unknown experiments {unknown}; choose from {list(EXPERIMENTS)}")
    p = preset
    data_id = data_label or data or "default CIFAR-10"
    names = list(models)
    steps: list[Step] = []
    ids = {name: _file_id(w) for name, (_, w) in models.items()}
    if "analysis" in chosen:
        for i, name in enumerate(names):
            arch, w = models[name]
            n = p.analysis_images if i == 0 else p.other_model_images
            if n <= 0:
                continue
            keys = ["analysis_images" if i == 0 else "other_model_images", "sparsities"]
            keys += ["analysis_methods", "analysis_preset", "dgr_iterations", "dgr_lr"]
            keys += ["greedy_step", "intgrad_steps", "seed"]
            if i == 0:
                keys += ["linearity_methods", "linearity_images", "directions", "pathway_sparsity"]
                keys += ["decode_sparsity", "decode_images", "decode_steps"]
            what = "overlap, fidelity, linearity, decoding" if i == 0 else "overlap"
            steps.append(
                Step(
                    f"analysis_{name}",
                    f"Pathway analysis (3.1, 3.2, section 4) on {name}",
                    "analysis",
                    _bind(S.pathway_analysis, arch, w, data, p, first=i == 0),
                    {"weights": ids[name], "data": data_id, **_pick(p, keys)},
                    f"pathway analysis ({what}) of {name}, {n} test images",
                )
            )
    if "draws" in chosen and names and len(p.draw_seeds) > 1:
        name = names[0]
        arch, w = models[name]
        keys = ["analysis_images", "sparsities", "analysis_preset", "dgr_iterations", "dgr_lr"]
        keys += ["perturbation_images", "draw_seeds", "seed"]
        steps.append(
            Step(
                f"draws_{name}",
                f"Random draws again with seeds {list(p.draw_seeds[1:])} on {name}",
                "draws",
                _bind(S.random_draws, arch, w, data, p),
                {
                    "weights": ids[name],
                    "data": data_id,
                    "methods": S.DRAW_METHODS,
                    **_pick(p, keys),
                },  # fmt: skip
                f"overlap of {', '.join(S.DRAW_METHODS)} and LeRF / MoRF of the random ranking "
                f"with seeds {', '.join(map(str, p.draw_seeds[1:]))}",
            )
        )
    n_eval = len(names) if p.eval_models is None else p.eval_models
    for name in names[:n_eval]:
        arch, w = models[name]
        common = {"weights": ids[name], "data": data_id}
        if "sweep" in chosen:
            steps.append(
                Step(
                    f"sweep_{name}",
                    f"Sparsity sweep (3.3) on {name}",
                    "sweep",
                    _bind(S.sparsity_sweep_step, arch, w, data, p),
                    {**common, **_pick(p, ["sweep_sparsities", "sweep_images"])},
                    f"NeuronMCT pathway gradient of {p.sweep_images} images at sparsities "
                    + ", ".join(f"{s:g}" for s in p.sweep_sparsities),
                )
            )
        if "sanity" in chosen:
            for init in p.sanity_inits:
                keys = ["sanity_images", "draw_seeds", "sanity_sparsity", "sanity_methods"]
                steps.append(
                    Step(
                        f"sanity_{name}_{init}",
                        f"Sanity check (3.4), cascading, init={init}, on {name}",
                        "sanity",
                        _bind(S.sanity, arch, w, data, p, init),
                        {**common, "init": init, "seed": p.seed, **_pick(p, keys)},
                        f"evaluation.sanity_check(mode='cascading', init='{init}', "
                        f"seeds={list(p.draw_seeds)}), {p.sanity_images} images",
                    )
                )
        if "perturbation" in chosen:
            # The paper leaves open whether maps were made absolute before ranking: run both.
            for rank_by, suffix in (("max", ""), ("abs", "_abs")):
                keys = ["perturbation_images", "saliency_methods", "pathway_sparsity", "seed"]
                steps.append(
                    Step(
                        f"perturbation_{name}{suffix}",
                        f"LeRF / MoRF pixel perturbation (3.6) on {name}, ranked by {rank_by}",
                        "perturbation",
                        _bind(S.perturbation, arch, w, data, p, rank_by),
                        {**common, "rank_by": rank_by, **_pick(p, keys)},
                        f"evaluation.pixel_perturbation(rank_by='{rank_by}'), "
                        f"{p.perturbation_images} images",
                    )
                )
    if "roar" in chosen:
        r = p.retrain
        steps.append(
            Step(
                "roar_kar",
                "ROAR and KAR (3.5): remove / keep the top pixels and retrain",
                "roar",
                _bind(S.remove_and_retrain, data, r, executor),
                {"data": data_id, "retrain": r},
                f"evaluation.roar.remove_and_retrain(modes={list(r.modes)}, "
                f"fractions={[f'{f:g} %' for f in r.fractions]}, repeats={r.repeats})",
            )
        )
    return steps


def _pick(preset: ReproductionPreset, keys: list[str]) -> dict:
    return {k: getattr(preset, k) for k in keys}


def _bind(func, *args, **kwargs) -> Callable[[Path], None]:
    def call(folder: Path) -> None:
        func(folder, *args, **kwargs)

    return call


def run_step(step: Step, out: Path) -> dict:
    """Run one step unless it already finished with the same settings; returns its record."""
    folder = out / step.key
    record_path = folder / "step.json"
    settings = clean_json(step.settings)
    if record_path.is_file():
        record = load_json(record_path)
        if record.get("settings") == settings:
            print(f"[reproduce] {step.key}: done before, kept ({record['seconds']:.0f} s)")
            return record
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[reproduce] {step.key}: {step.title}", flush=True)
    start = time.perf_counter()
    step.func(folder)
    record = {
        "key": step.key,
        "title": step.title,
        "experiment": step.experiment,
        "call": step.call,
        "settings": settings,
        "seconds": time.perf_counter() - start,
    }
    write_json(record_path, record)
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
    preset: str | ReproductionPreset = "quick",
    *,
    data=None,
    models=None,
    out="reproduction",
    threads: int | None = None,
    executor=None,
    experiments: Sequence[str] | None = None,
    claim=None,
) -> dict:
    """Run the paper's experiments with ``preset`` and write ``report.md`` + ``results.json``.

    ``preset``: a name of :data:`pathwaygrad.presets.REPRODUCTION` (``quick``, ``paper``,
    ``tiny``, ``claim``) or a :class:`~pathwaygrad.presets.ReproductionPreset`; ``data``: CIFAR-10
    (None: the copy in ``../shared``); ``models``: folder of the pretrained CIFAR ResNets (None:
    ``../shared/models/cifar10-resnet``); ``out``: output folder (resumable: call again after an
    interruption and finished steps are kept); ``threads``: torch CPU threads; ``executor``: where
    ROAR / KAR cells run (``"local"``, ``"sequential"``, ``"ray"`` or an executor object; None:
    the preset's); ``experiments``: run only these of ``analysis``, ``sweep``, ``sanity``,
    ``perturbation``, ``roar`` (the report covers what has run); ``claim``: the ``results.json``
    of a claim run (``--preset claim``), whose verdict then decides the ROAR claim (None:
    ``out/claim/results.json`` when it exists; it is copied there with its report otherwise).
    Returns the report's results.

    The ``claim`` preset writes the ROAR-claim report (:mod:`pathwaygrad.reproduce.claim`) instead
    of the full one.
    """
    from pathwaygrad.reproduce.claim import load_claim, write_claim_report
    from pathwaygrad.reproduce.report import write_report

    if isinstance(preset, str):
        if preset not in REPRODUCTION:
            raise UserError(f"unknown preset {preset!r}; choose from {sorted(REPRODUCTION)}")
        p = REPRODUCTION[preset]
    else:
        p = preset
    if threads is not None:
        if threads < 1:
            raise UserError("threads must be >= 1")
        import torch

        torch.set_num_threads(threads)
    out = Path(out)
    claim_file = _claim_file(claim, out) if p.report != "claim" else None
    out.mkdir(parents=True, exist_ok=True)
    model_files, data_path = _models(p, models, data, out)
    label = "tiny/data (synthetic)" if p.name == "tiny" else data
    steps = plan(p, model_files, data_path, executor, experiments, data_label=label)
    print(
        f"[reproduce] preset {p.name}: {len(steps)} steps, expected about "
        f"{p.expected_minutes:g} minutes on 2 CPU cores; resumable: rerun the same command "
        f"after an interruption",
        flush=True,
    )
    started = time.perf_counter()
    records = [run_step(s, out) for s in steps]
    elapsed = time.perf_counter() - started
    if p.report == "claim":
        return write_claim_report(
            out / "roar_kar",
            out,
            p,
            seconds=sum(r["seconds"] for r in records),
            command=_command(p, out, data),
        )
    table = None
    if claim_file is not None:
        _copy_claim(claim_file, out / "claim")
        table = load_claim(out / "claim" / "results.json")
    return write_report(out, p, model_files, data, records, environment(), elapsed, table)


def _command(p: ReproductionPreset, out: Path, data) -> str:
    return f"pathwaygrad reproduce --preset {p.name} --out {out.name}" + (
        f" --data {data}" if data else ""
    )


def _claim_file(claim, out: Path) -> Path | None:
    if claim is None:
        default = out / "claim" / "results.json"
        return default if default.is_file() else None
    path = Path(claim)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise UserError(
            f"claim results {claim} not found: give the results.json written by "
            "`pathwaygrad reproduce --preset claim` (or its folder)"
        )
    return path


def _copy_claim(results: Path, dest: Path) -> None:
    """The claim's results.json, report.md and figures beside the report that cites them."""
    src = results.parent
    if src.resolve() == dest.resolve():
        return
    for f in [results, src / "report.md", *sorted((src / "figures").glob("*.png"))]:
        if f.is_file():
            rel = "results.json" if f == results else f.relative_to(src)
            write_bytes(dest / rel, f.read_bytes())

"""The experiments of a reproduction, each a plain function of its step folder and settings.

Every function here calls the library (analysis, evaluation protocols, training), never the
command line, and writes its tables and figures into ``folder`` through :mod:`pathwaygrad._io`.
The report (:mod:`.report`) reads those files back.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch

from pathwaygrad._io import clean_json, load_json, write_json
from pathwaygrad.errors import UserError
from pathwaygrad.presets import ReproductionPreset, RetrainSettings, method_list

# The paper's pixel-perturbation and sanity steps explain batches of this many images.
EXPLAIN_BATCH = 64
# Linearisation-error radii of the local-linearity analysis (L2, input space).
LINEARITY_RADII = (0.001, 0.01, 0.1, 1.0)


# ---------------------------------------------------------------------------------- inputs
def _sha1(path: str) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]


def load_trained(arch: str, weights: str) -> torch.nn.Module:
    """The pretrained model ``arch`` with ``weights``, on the CPU, in eval mode."""
    from pathwaygrad.models import load_model

    return load_model(arch, weights).to("cpu").eval()


def test_images(arch: str, data: str | None, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` CIFAR-10 test images normalised for ``arch``: a seeded subset, class-balanced when
    ``n`` is a multiple of the number of classes."""
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.models import model_info

    info = model_info(arch)
    ds = load_cifar10(data, "test", mean=info.mean, std=info.std)
    balanced = n >= len(ds.classes) and n % max(1, len(ds.classes)) == 0
    ds = ds.subset(n, seed=seed, per_class=balanced)
    x, _ = ds.get_batch(np.arange(len(ds)))
    return x


# -------------------------------------------------------------------------------- analysis
def pathway_analysis(
    folder: Path,
    arch: str,
    weights: str,
    data: str | None,
    preset: ReproductionPreset,
    *,
    first: bool,
    methods: tuple[str, ...] | None = None,
    method_seed: int | None = None,
    n_images: int | None = None,
) -> None:
    """Section 3.1 (overlap, dead neurons, fidelity), 3.2 (decoding) and 4 (local linearity) on
    the first model; overlap only on the others.

    ``methods`` / ``method_seed``: other pathways / another seed of the random methods (Random,
    DGR); the image subset stays the one of ``preset.seed``.
    """
    from pathwaygrad.analysis.run import analysis_config, load_data, run_config
    from pathwaygrad.models import model_info

    info = model_info(arch)
    mean, std = tuple(info.mean), tuple(info.std)
    model = load_trained(arch, weights)
    ds, data_desc = load_data(data, split="test", mean=mean, std=std, size=info.input_size)
    n = n_images or (preset.analysis_images if first else preset.other_model_images)
    ds = ds.subset(n, seed=preset.seed)  # the same images whatever the methods' seed
    seed = preset.seed if method_seed is None else method_seed
    cfg = analysis_config(
        "all" if first else "overlap",
        methods=list(methods or preset.analysis_methods),
        sparsities=list(preset.sparsities),
        preset=preset.analysis_preset,
        n_images=n,
        dgr_iterations=preset.dgr_iterations,
        dgr_lr=preset.dgr_lr,
        greedy_step=preset.greedy_step,
        intgrad_steps=preset.intgrad_steps,
        linearity_methods=list(preset.linearity_methods) if first else None,
        linearity_sparsities=[preset.pathway_sparsity] if first else None,
        linearity_images=preset.linearity_images,
        directions=preset.directions,
        radii=LINEARITY_RADII,
        decode_sparsity=preset.decode_sparsity,
        decode_images=preset.decode_images,
        decode_steps=preset.decode_steps,
        mean=mean,
        std=std,
        seed=seed,
    )
    meta = {
        "model": arch,
        "weights": Path(weights).name,
        "data": data_desc if data is None else Path(data).name,
        "split": "test",
        "image_seed": preset.seed,
        "method_seed": seed,
    }
    run_config(model, ds, cfg, folder, progress=False, info=meta, manifest=False)


#: Pathways whose overlap and dead share depend on a random draw, with NeuronMCT to compare.
DRAW_METHODS = ("neuron_mct", "dgr_random", "random")


def random_draws(
    folder: Path, arch: str, weights: str, data: str | None, preset: ReproductionPreset
) -> None:
    """The numbers that depend on a random draw, again for each of ``preset.draw_seeds`` but the
    first (which the analysis and perturbation steps ran): overlap and dead share of Random and
    DGR(init=r) pathways (``seed_<s>/``, same images) and the random ranking's LeRF / MoRF drops
    (``random_ranking_seed_<s>/``)."""
    from pathwaygrad.evaluation.perturbation import DEFAULT_FRACTIONS, pixel_perturbation

    model = load_trained(arch, weights)
    x = test_images(arch, data, preset.perturbation_images, preset.seed)
    for s in preset.draw_seeds[1:]:
        pathway_analysis(
            folder / f"seed_{s}",
            arch,
            weights,
            data,
            preset,
            first=False,
            methods=DRAW_METHODS,
            method_seed=s,
            n_images=preset.analysis_images,
        )
        table = pixel_perturbation(
            model,
            x,
            "random_ranking",
            fractions=DEFAULT_FRACTIONS,
            rank_by="abs",
            batch_size=EXPLAIN_BATCH,
            seed=s,
        )
        sub = folder / f"random_ranking_seed_{s}"
        table.save(sub)
        write_json(sub / "summary.json", {**table.meta, "summary": table.summary})


# ----------------------------------------------------------------------------------- sweep
def sparsity_sweep_step(
    folder: Path, arch: str, weights: str, data: str | None, preset: ReproductionPreset
) -> None:
    """Section 3.3: NeuronMCT pathway gradient of the first test images at rising sparsity."""
    from pathwaygrad.reproduce.sweep import sparsity_sweep

    sparsity_sweep(folder, arch, weights, data, preset.sweep_sparsities, preset.sweep_images)


# ---------------------------------------------------------------------------------- sanity
def sanity(
    folder: Path,
    arch: str,
    weights: str,
    data: str | None,
    preset: ReproductionPreset,
    init: str,
) -> None:
    """Section 3.4: cascading randomisation, top layer first, over ``preset.draw_seeds``.

    Writes ``results.csv`` / ``summary.json`` (one row per method x seed x step), ``spread.csv``
    (mean, sd, min, max over seeds per method x step) and ``sanity.png`` (mean ± sd over seeds).
    """
    from pathwaygrad.evaluation import ResultTable, plots, write_csv
    from pathwaygrad.evaluation.sanity import merge_seeds, sanity_check, summarize_seeds

    model = load_trained(arch, weights)
    x = test_images(arch, data, preset.sanity_images, preset.seed)
    methods = method_list(preset.sanity_methods, preset.sanity_sparsity)
    # One run per seed, each kept as it finishes (a killed step resumes at the next seed); the
    # merged table equals one run with every seed.
    key = clean_json(
        {"model": _sha1(weights), "data": data, "images": preset.sanity_images, "init": init,
         "methods": methods, "image_seed": preset.seed}
    )  # fmt: skip
    parts = []
    for s in preset.draw_seeds:
        path = folder / "seeds" / f"seed_{s}.json"
        saved = load_json(path) if path.is_file() else None
        if saved is not None and saved.get("key") == key:
            part = ResultTable(saved["rows"], saved["summary"], saved["meta"])
        else:
            part = sanity_check(
                model,
                x,
                methods,
                mode="cascading",
                init=init,
                granularity="blocks",
                batch_size=EXPLAIN_BATCH,
                seed=preset.seed,
                seeds=[s],
                progress=False,
            )
            write_json(
                path, {"key": key, "rows": list(part), "summary": part.summary, "meta": part.meta}
            )
        parts.append(part)
    table = merge_seeds(parts)
    table.meta["model"] = f"{arch} ({Path(weights).name})"
    table.save(folder)
    spread = ResultTable(summarize_seeds(table), {}, table.meta)
    write_csv(folder / "spread.csv", spread)
    plots.plot_sanity(spread, folder / "sanity.png")


# ---------------------------------------------------------------------------- perturbation
def perturbation(
    folder: Path,
    arch: str,
    weights: str,
    data: str | None,
    preset: ReproductionPreset,
    rank_by: str,
) -> None:
    """Section 3.6: LeRF / MoRF pixel perturbation with pixels ranked by ``rank_by``."""
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.perturbation import DEFAULT_FRACTIONS, pixel_perturbation

    model = load_trained(arch, weights)
    x = test_images(arch, data, preset.perturbation_images, preset.seed)
    table = pixel_perturbation(
        model,
        x,
        method_list(preset.saliency_methods, preset.pathway_sparsity) + ";random_ranking",
        fractions=DEFAULT_FRACTIONS,
        rank_by=rank_by,
        batch_size=EXPLAIN_BATCH,
        seed=preset.seed,
    )
    table.meta["model"] = f"{arch} ({Path(weights).name})"
    table.save(folder)
    plots.plot_perturbation(table, folder / "perturbation.png")
    write_json(folder / "summary.json", {**table.meta, "summary": table.summary})


# -------------------------------------------------------------------------------- retrain
def retrain_model_factory(settings: RetrainSettings):
    """A picklable factory of the untrained model ROAR / KAR retrain."""
    from pathwaygrad.models import ResNet8, load_model

    if settings.channels_last:
        return functools.partial(channels_last_model, settings.model, settings.widths)
    if settings.model == "resnet8" and settings.widths is not None:
        return functools.partial(ResNet8, widths=_three(settings.widths))
    if settings.widths is not None:
        raise UserError(f"widths are a ResNet-8 setting, not one of {settings.model}")
    return functools.partial(load_model, settings.model)


def _three(widths: tuple[int, ...]) -> tuple[int, int, int]:
    if len(widths) != 3:
        raise UserError(f"ResNet-8 has three stages: give three widths, got {widths}")
    return (int(widths[0]), int(widths[1]), int(widths[2]))


def channels_last_model(name: str, widths: tuple[int, ...] | None) -> torch.nn.Module:
    """``name`` (ResNet-8 at ``widths`` when given) in channels-last memory layout (faster
    convolutions on the CPU; the same function)."""
    from pathwaygrad.models import ResNet8, load_model

    if widths is not None:
        if name != "resnet8":
            raise UserError(f"widths are a ResNet-8 setting, not one of {name}")
        model: torch.nn.Module = ResNet8(widths=_three(widths))
    else:
        model = load_model(name)
    return model.to(memory_format=torch.channels_last)


def remove_and_retrain(
    folder: Path, data: str | None, settings: RetrainSettings, executor=None
) -> None:
    """Section 3.5: ROAR / KAR cells of ``settings``, stage by stage; resumable in ``folder``.

    ``executor``: ``"local"``, ``"sequential"``, ``"ray"`` or an executor object (None: the
    settings'); it decides where cells run, not what they compute.
    """
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.roar import remove_and_retrain as run
    from pathwaygrad.models import model_info

    info = model_info(settings.model)

    def subset(ds, n):
        if not n:
            return ds
        balanced = n % max(1, len(ds.classes)) == 0
        return ds.subset(n, seed=0, per_class=balanced)

    train = subset(load_cifar10(data, "train", mean=info.mean, std=info.std), settings.train_subset)
    test = subset(load_cifar10(data, "test", mean=info.mean, std=info.std), settings.test_subset)
    table = None
    for stage in settings.fraction_stages():
        table = run(
            retrain_model_factory(settings),
            train,
            test,
            settings.methods,
            out_dir=folder,
            modes=settings.modes,
            fractions=tuple(f / 100.0 for f in stage),
            repeats=settings.repeats,
            include_random=settings.include_random,
            rank_by=settings.rank_by,
            train_kwargs=settings.train_kwargs(),
            val_fraction=settings.val_fraction,
            executor=executor or settings.executor,
            train_threads=settings.train_threads,
            map_batch_size=settings.map_batch_size,
            seed=settings.seed,
        )
    if table is not None:
        plots.plot_roar(table, Path(folder) / "roar_kar.png")

"""ROAR and KAR (paper section 3.5) in one step: both protocols share the maps and base model."""

from __future__ import annotations

import functools
from pathlib import Path


def roar_and_kar(folder: Path, data, preset) -> None:
    """Run :func:`pathwaygrad.evaluation.roar.remove_and_retrain` with modes ("roar", "kar").

    Settings come from ``pathwaygrad evaluate``'s preset named by ``preset.roar_preset``,
    overridden by the reproduction preset's ``roar_*`` fields.
    """
    from pathwaygrad.cli.evaluate import PRESETS as EVAL_PRESETS
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.evaluation import plots
    from pathwaygrad.evaluation.roar import remove_and_retrain
    from pathwaygrad.models import ResNet8, load_model, model_info
    from pathwaygrad.reproduce.presets import methods

    ev = EVAL_PRESETS[preset.roar_preset]
    if preset.roar_model is not None:
        factory = functools.partial(load_model, preset.roar_model)
        info = model_info(preset.roar_model)
    elif ev["roar_widths"] is not None:
        factory = functools.partial(ResNet8, widths=tuple(ev["roar_widths"]))
        info = model_info("resnet8")
    else:
        factory = functools.partial(load_model, "resnet8")
        info = model_info("resnet8")

    def subset(ds, n):
        if not n:
            return ds
        balanced = n % max(1, len(ds.classes)) == 0
        return ds.subset(n, seed=0, per_class=balanced)

    train_n = ev["train_subset"] if preset.roar_train_subset is None else preset.roar_train_subset
    test_n = ev["test_subset"] if preset.roar_test_subset is None else preset.roar_test_subset
    train = subset(load_cifar10(data, "train", mean=info.mean, std=info.std), train_n)
    test = subset(load_cifar10(data, "test", mean=info.mean, std=info.std), test_n)
    epochs = preset.roar_epochs or ev["epochs"]
    table = remove_and_retrain(
        factory,
        train,
        test,
        methods(preset.roar_methods, preset.pathway_sparsity),
        out_dir=folder,
        modes=("roar", "kar"),
        fractions=tuple(f / 100.0 for f in preset.roar_fractions),
        repeats=preset.roar_repeats or ev["repeats"],
        train_kwargs={"epochs": epochs, "batch_size": ev["train_batch_size"]},
        executor="sequential" if preset.name == "tiny" else "local",
        seed=0,
    )
    plots.plot_roar(table, Path(folder) / "roar_kar.png")

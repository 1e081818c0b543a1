"""Sparsity sweep (paper section 3.3): pathway-gradient maps as the sparsity rises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pathwaygrad._io import save_figure, write_json


def concentration(maps: torch.Tensor, top: float = 0.1) -> torch.Tensor:
    """Share of the total |map| held by the top ``top`` fraction of pixels, per map (B,).

    1.0 means all attribution sits in those pixels; ``top`` means it is spread evenly.
    """
    flat = maps.abs().flatten(1)
    k = max(1, int(round(top * flat.shape[1])))
    total = flat.sum(dim=1).clamp(min=torch.finfo(flat.dtype).tiny)
    return flat.topk(k, dim=1).values.sum(dim=1) / total


def sparsity_sweep(folder: Path, arch, weights, data, sparsities, n_images: int) -> dict:
    """Maps of NeuronMCT pathway gradient at each sparsity for the first test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pathwaygrad as pg
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.models import load_model, model_info

    folder = Path(folder)
    model = load_model(arch, weights).eval()
    info = model_info(arch)
    ds = load_cifar10(data, "test", mean=info.mean, std=info.std)
    x, _ = ds.get_batch(np.arange(n_images))
    rows, table = [], []
    for s in sparsities:
        pathway = pg.select_pathway(model, x, method="neuron_mct", sparsity=s)
        maps = pg.reduce_channels(pg.pathway_gradient(model, x, pathway))
        rows.append(maps)
        conc = concentration(maps)
        table.append(
            {
                "sparsity": float(s),
                "real_sparsity_mean": float(pathway.sparsity.mean()),
                "top10_share_mean": float(conc.mean()),
            }
        )
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    pixels = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    fig, axes = plt.subplots(
        n_images, len(sparsities) + 1, figsize=(1.6 * (len(sparsities) + 1), 1.7 * n_images)
    )
    axes = np.atleast_2d(axes)
    for i in range(n_images):
        axes[i, 0].imshow(pixels[i])
        for j, s in enumerate(sparsities):
            axes[i, j + 1].imshow(rows[j][i].numpy(), cmap="bwr", vmin=-1, vmax=1)
            if i == 0:
                axes[i, j + 1].set_title(f"s={s:g}", fontsize=9)
    axes[0, 0].set_title("input", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("NeuronMCT pathway gradient vs sparsity (s = % pruned; s=0 is the gradient)")
    fig.tight_layout()
    save_figure(fig, folder / "sweep.png", dpi=110)
    plt.close(fig)
    result = {"method": "neuron_mct", "images": n_images, "rows": table, "figure": "sweep.png"}
    write_json(folder / "sweep.json", result)
    return result

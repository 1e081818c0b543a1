"""Pathway decoding (paper section 3.2): what does a pathway encode?

Feature visualisation through the network restricted to a pathway: an image is optimised from
noise to maximise the target logit while the pathway's masks stay fixed (constant gates). The
image is parameterised in the Fourier domain with a 1/f amplitude scaling and a decorrelated colour
basis, squashed to [0, 1] by a sigmoid, and randomly shifted (jitter) at every step, the usual
regularisers of Olah et al. (2017, "Feature Visualization"). The same machinery visualises one
neuron: the top-scoring neuron of the last convolutional call of each method's pathway.

Images live in pixel space [0, 1]; they are normalised with ``mean``/``std`` before the model
sees them (the built-in CIFAR models expect ImageNet statistics, the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pathwaygrad.analysis._masked import mask_transform
from pathwaygrad.sites import ActivationRunner

__all__ = ["DecodeResult", "FourierImage", "decode", "decode_pathways", "top_neuron"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Square root of ImageNet's colour correlation (Olah et al. 2017, lucid), columns normalised.
_COLOR_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float64
)


class FourierImage(torch.nn.Module):
    """A batch of images (N, C, H, W) in [0, 1] parameterised by a scaled Fourier spectrum.

    Low frequencies get amplitude ~1/f (``decay``) so that gradient steps favour smooth,
    natural-looking images; with 3 channels the colours are decorrelated as in lucid.
    """

    def __init__(
        self,
        n: int,
        channels: int,
        height: int,
        width: int,
        *,
        decay: float = 1.0,
        std: float = 0.01,
        decorrelate: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
        fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
        freq = (fy**2 + fx**2).sqrt().clamp(min=1.0 / max(height, width))
        self.register_buffer("scale", (1.0 / freq**decay).float())
        gen = torch.Generator().manual_seed(int(seed))
        shape = (n, channels, height, width // 2 + 1, 2)
        self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=gen) * std)
        self.size = (height, width)
        self.decorrelate = decorrelate and channels == 3
        c = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()
        self.register_buffer("color", c.float())

    def forward(self) -> torch.Tensor:
        scale: torch.Tensor = self.scale  # type: ignore[assignment]
        spec = torch.view_as_complex(self.spectrum) * scale
        img = torch.fft.irfft2(spec, s=self.size, norm="ortho")
        if self.decorrelate:
            img = torch.einsum("nchw,dc->ndhw", img, self.color)
        return torch.sigmoid(img)


@dataclass
class DecodeResult:
    """Decoded images (N, C, H, W) in [0, 1]; objective at the start and the end, (N,)."""

    images: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor


def _objective(runner, x, masks, targets, neuron):
    """Target logit (N,), or the activation of neuron (call, flat index (N,)) in the masked net."""
    picked = []
    base = mask_transform(masks)

    def transform(i, kind, out):
        out = base(i, kind, out)
        if neuron is not None and i == neuron[0]:
            picked.append(out.flatten(1).gather(1, neuron[1][:, None]).squeeze(1))
        return out

    logits, _, _ = runner.forward(x, transform)
    if neuron is not None:
        return picked[0]
    return logits.gather(1, targets[:, None]).squeeze(1)


def decode(
    model,
    masks: Sequence[torch.Tensor] | None,
    targets: torch.Tensor,
    shape: Sequence[int],
    *,
    neuron: tuple[int, torch.Tensor] | None = None,
    steps: int = 256,
    lr: float = 0.1,
    jitter: int = 2,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    decay: float = 1.0,
    init_std: float = 0.01,
    decorrelate: bool = True,
    seed: int = 0,
    activations: Sequence[str] = ("relu",),
) -> DecodeResult:
    """Optimise N images to maximise the target logit of the network restricted to ``masks``.

    Args:
        masks: one bool tensor (N, ...) per activation call (image n is decoded through pathway
            n), or None for the full network.
        targets: (N,) classes. ``shape``: (C, H, W) of one input.
        neuron: ``(call index, flat neuron index (N,))`` to maximise that neuron's activation
            instead of the logit.
        steps, lr: Adam steps and learning rate; jitter: max random shift in pixels per step.

    Returns:
        a :class:`DecodeResult`; ``start``/``end`` are the objective on the un-jittered image
        before and after optimisation.
    """
    from pathwaygrad._guard import preserved

    targets = torch.as_tensor(targets).long()
    n = len(targets)
    c, h, w = (int(v) for v in shape)
    param = FourierImage(n, c, h, w, decay=decay, std=init_std, decorrelate=decorrelate, seed=seed)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    runner = ActivationRunner(model, activations)
    opt = torch.optim.Adam(param.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed) + 1)

    def value(img):
        return _objective(runner, (img - m) / s, masks, targets, neuron)

    with preserved(model):
        with torch.no_grad():
            start = value(param())
        for _ in range(int(steps)):
            img = param()
            if jitter > 0:
                dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist()
                img = torch.roll(img, shifts=(dy, dx), dims=(2, 3))
            loss = -value(img).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            final = param()
            end = value(final)
    return DecodeResult(final.detach(), start.detach(), end.detach())


def last_conv_call(masks: Sequence[torch.Tensor]) -> int:
    """Index of the last activation call with a spatial (4-D) output."""
    idx = [i for i, mk in enumerate(masks) if mk.ndim == 4]
    if not idx:
        raise ValueError("the model has no activation call with a (B, C, H, W) output")
    return idx[-1]


def top_neuron(model, inputs, pathway, scores: Sequence[torch.Tensor] | None = None):
    """The top-scoring kept neuron of the last convolutional call of ``pathway``.

    ``scores``: the method's neuron scores (one tensor per call); None (e.g. Greedy, which has
    none) uses the Taylor score |a dy/da| in the network restricted to the pathway. Returns
    ``(call index, flat index (B,), score (B,))``; index -1 (score -inf) where the pathway keeps
    no neuron of that call.
    """
    from pathwaygrad._guard import preserved

    call = last_conv_call(pathway.masks)
    mask = pathway.masks[call].flatten(1)
    if scores is None:
        runner = ActivationRunner(model, pathway.activations)
        record: list[torch.Tensor] = []
        with preserved(model), torch.enable_grad():
            x = inputs.detach().clone().requires_grad_(True)
            logits, _, _ = runner.forward(x, mask_transform(pathway.masks, record))
            y = logits.gather(1, pathway.targets[:, None]).sum()
            (g,) = torch.autograd.grad(y, record[call])
        sc = (record[call] * g).abs().detach().flatten(1)
    else:
        sc = scores[call].flatten(1).double()
    sc = torch.where(mask, sc.double(), torch.full_like(sc, -float("inf"), dtype=torch.float64))
    best = sc.max(dim=1)
    valid = torch.isfinite(best.values)
    return call, torch.where(valid, best.indices, -1), best.values


def decode_pathways(
    model,
    inputs: torch.Tensor,
    pathway_set,
    sparsity: float,
    *,
    labels: Sequence[str] | None = None,
    neurons: bool = True,
    **options,
) -> dict:
    """Decode the full network and each method's pathway of every example of ``inputs``.

    ``pathway_set``: a :class:`~pathwaygrad.analysis.pathways.PathwaySet` of ``inputs`` (with
    ``keep_scores=True`` for the methods' own neuron scores). Options go to :func:`decode`.

    Returns ``{"class": {name: DecodeResult}, "neuron": {label: DecodeResult},
    "neuron_index": {label: (call, flat index (B,))}}`` with ``name`` "full" or a method label;
    each result holds B images.
    """
    labels = [s.label for s in pathway_set.specs] if labels is None else list(labels)
    targets = pathway_set.targets
    b = inputs.shape[0]
    shape = inputs.shape[1:]
    all_masks = [pathway_set.pathways[(lab, sparsity)].masks for lab in labels]
    ones = [torch.ones_like(mk) for mk in all_masks[0]]
    stacked = [torch.cat([ones[i]] + [mk[i] for mk in all_masks]) for i in range(len(ones))]
    res = decode(model, stacked, targets.repeat(len(labels) + 1), shape, **options)
    names = ["full"] + labels
    out: dict = {"class": {}, "neuron": {}, "neuron_index": {}}
    for k, name in enumerate(names):
        sl = slice(k * b, (k + 1) * b)
        out["class"][name] = DecodeResult(res.images[sl], res.start[sl], res.end[sl])
    if neurons:
        picks = []
        for lab in labels:
            p = pathway_set.pathways[(lab, sparsity)]
            call, idx, _ = top_neuron(model, inputs, p, pathway_set.scores.get(lab))
            out["neuron_index"][lab] = (call, idx)
            picks.append(idx)
        call = last_conv_call(all_masks[0])
        stacked_m = [torch.cat([mk[i] for mk in all_masks]) for i in range(len(ones))]
        picked = torch.cat(picks)
        res = decode(
            model,
            stacked_m,
            targets.repeat(len(labels)),
            shape,
            neuron=(call, picked.clamp(min=0)),
            **options,
        )
        nan = torch.full_like(res.end, float("nan"))
        start = torch.where(picked >= 0, res.start, nan)
        end = torch.where(picked >= 0, res.end, nan)
        for k, lab in enumerate(labels):
            sl = slice(k * b, (k + 1) * b)
            out["neuron"][lab] = DecodeResult(res.images[sl], start[sl], end[sl])
    return out

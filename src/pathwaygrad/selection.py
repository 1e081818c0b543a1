"""Step 3 of the pipeline: select a critical pathway for each example.

:func:`select_pathway` runs step 1 (find the activation calls), step 2 (score the neurons with the
chosen method) and thresholds the scores into a :class:`~pathwaygrad.Pathway`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import torch

from pathwaygrad._guard import preserved
from pathwaygrad._inputs import check_inputs, check_options, check_sparsity, forward_args, run_model
from pathwaygrad.errors import UserError
from pathwaygrad.methods import METHOD_OPTIONS, PATHWAY_METHODS, check_values
from pathwaygrad.pathway import Pathway
from pathwaygrad.probe import probe, target_outputs
from pathwaygrad.sites import AUTO, ActivationRunner, Activations, MaskTransform
from pathwaygrad.thresholds import THRESHOLDS, threshold_masks

DEFAULT_CANDIDATES = (99.0, 98.0, 95.0, 90.0, 85.0, 80.0, 70.0, 50.0, 0.0)


class NeuronScores(NamedTuple):
    """Scores of every neuron: one tensor per activation call (B, ...), with site names."""

    scores: list[torch.Tensor]
    sites: list[str]
    targets: torch.Tensor
    logits: torch.Tensor
    activations: tuple[str, ...] = ("relu",)


class PathwaySweep(NamedTuple):
    """:func:`select_pathways` with ``return_scores=True``: the pathways and the scores they
    were thresholded from (None for Greedy and the dead path)."""

    pathways: dict[float, Pathway]
    scores: NeuronScores | None


def select_pathway(
    model,
    inputs: torch.Tensor,
    target=None,
    method: str = "neuron_mct",
    sparsity: float | str = 90.0,
    *,
    activations: Activations = AUTO,
    threshold: str | None = None,
    additional_forward_args=None,
    tolerance: float = 0.05,
    criterion: str = "logit",
    candidates: Sequence[float] = DEFAULT_CANDIDATES,
    **options,
) -> Pathway:
    """Select the critical pathway of each example (Khakzar et al., CVPR 2021).

    Args:
        model: an ``nn.Module`` (or callable) mapping inputs (B, ...) to logits (B, K).
        inputs: (B, ...) float tensor on the model's device.
        target: None (each example's predicted class), an int, or one class per example.
        method: one of ``PATHWAY_METHODS`` (see :mod:`pathwaygrad.methods`).
        sparsity: percent of neurons pruned, 0 <= s < 100, with one global threshold per
            example; or ``"adaptive"``: per example the sparsest of ``candidates`` whose pathway
            keeps the target logit (``criterion="logit"``) or softmax probability
            (``criterion="probability"``) within ``tolerance`` (relative) of the full network's.
            Ignored by ``"dead"``; for ``"greedy"`` the last percentile of its schedule.
        activations: kinds of activation calls that hold neurons (``"relu"``, ``"gelu"``, ...;
            see :data:`~pathwaygrad.sites.ACTIVATION_KINDS`), or ``"auto"`` (default; None too):
            ReLU if the model calls any ReLU, otherwise every supported kind it calls. The kinds
            used are ``Pathway.activations``; when they are not ReLU,
            ``Pathway.info["activations_note"]`` says so (e.g. "this model calls no ReLU; using
            gelu"). Attention softmax and normalisation layers are not neurons.
        threshold: ``"global"`` (paper) or ``"per_layer"``; ``"random"`` defaults to per layer.
        additional_forward_args: extra arguments passed to ``model`` after the inputs.
        **options: method options, e.g. ``steps``, ``internal_batch_size`` (NeuronIntGrad),
            ``seed`` (Random, DGR), ``init``, ``lam``, ``lr``, ``iterations`` (DGR), ``step``
            and ``schedule`` (Greedy: ``"inclusive"`` percentiles 0..s, the default, or
            ``"paper_figures"`` 0..s - step, see :mod:`pathwaygrad.methods.greedy`).

    Returns:
        a :class:`~pathwaygrad.Pathway` (masks per activation call, real sparsity per example).

    The model is left exactly as it was (weights, buffers, modes, ``requires_grad``, no hooks).
    """
    _check_method(method, options)
    adaptive = isinstance(sparsity, str)
    if adaptive:
        if sparsity != "adaptive":
            raise UserError(
                f"sparsity must be a number in [0, 100) or 'adaptive', got {sparsity!r}"
            )
        cands = sorted((check_sparsity(c) for c in candidates), reverse=True)
        if not cands:
            raise UserError("candidates must list at least one sparsity")
        if criterion not in ("logit", "probability"):
            raise UserError(f"criterion must be 'logit' or 'probability', got {criterion!r}")
        if not tolerance >= 0:
            raise UserError(
                f"tolerance must be >= 0 (relative change of the logit), got {tolerance}"
            )
        level = cands[0]
    else:
        level = check_sparsity(sparsity)
    threshold = _check_threshold(method, threshold)
    inputs = check_inputs(inputs, model)
    extra = forward_args(additional_forward_args)
    runner = ActivationRunner(model, activations)
    if not adaptive:
        chosen, _ = _select_levels(
            runner, inputs, target, method, [level], threshold, extra, options
        )
        _warn_empty_calls(chosen[level])
        return chosen[level]
    if method in ("greedy", "dead"):
        raise UserError(
            f"method {method!r} selects its own neurons: adaptive sparsity does not apply"
        )
    with preserved(model):
        first = probe(runner, inputs, target, extra, grad=method == "neuron_mct")
        scores = _scores(method, runner, inputs, first, extra, options)
        masks, requested, kept_logits = _adaptive(
            runner, inputs, first, extra, scores, threshold, cands, tolerance, criterion
        )
        del scores
    pathway = _pathway(first, runner, method, masks, requested)
    pathway.info["pathway_logits"] = kept_logits
    _warn_empty_calls(pathway)
    return pathway


def select_pathways(
    model,
    inputs: torch.Tensor,
    target=None,
    method: str = "neuron_mct",
    sparsities: Sequence[float] = (80.0, 90.0, 99.0),
    *,
    activations: Activations = AUTO,
    threshold: str | None = None,
    additional_forward_args=None,
    return_scores: bool = False,
    **options,
) -> dict[float, Pathway] | PathwaySweep:
    """The pathways of each example at several sparsities from one scoring run.

    Same arguments as :func:`select_pathway`, with ``sparsities`` (percent pruned, each
    0 <= s < 100) instead of one ``sparsity``. The neurons are scored once (NeuronMCT,
    NeuronIntGrad, Random, DGR) and thresholded at each sparsity, so a sweep costs one
    selection; Greedy runs its schedule once per sparsity, and the dead path ignores them.
    Each pathway equals ``select_pathway(..., sparsity=s)`` exactly.

    Returns:
        ``{s: Pathway}`` in the order of ``sparsities`` (keys as floats). With
        ``return_scores=True``, a :class:`PathwaySweep` ``(pathways, scores)``: the same dict and
        the :class:`NeuronScores` the pathways were thresholded from (equal to
        :func:`score_neurons`'s), or None for Greedy and the dead path, which score nothing.
    """
    _check_method(method, options)
    if isinstance(sparsities, str | int | float):
        raise UserError(
            f"sparsities must be a list of numbers in [0, 100), got {sparsities!r} "
            "(for one sparsity or 'adaptive', use select_pathway)"
        )
    levels = list(dict.fromkeys(check_sparsity(s) for s in sparsities))
    if not levels:
        raise UserError("sparsities must list at least one sparsity")
    threshold = _check_threshold(method, threshold)
    inputs = check_inputs(inputs, model)
    extra = forward_args(additional_forward_args)
    runner = ActivationRunner(model, activations)
    out, scores = _select_levels(
        runner, inputs, target, method, levels, threshold, extra, options, return_scores
    )
    for pathway in out.values():
        _warn_empty_calls(pathway)
    return PathwaySweep(out, scores) if return_scores else out


def _select_levels(
    runner, inputs, target, method, levels, threshold, extra, options, keep_scores=False
) -> tuple[dict[float, Pathway], NeuronScores | None]:
    """``{level: Pathway}`` from one probe and one scoring run (Greedy: a probe per level), and
    the scores when ``keep_scores`` (None for Greedy and the dead path)."""
    chosen = {}
    kept = None
    with preserved(runner.forward_func):
        first = probe(runner, inputs, target, extra, grad=method in ("neuron_mct", "greedy"))
        if method in ("greedy", "dead"):
            for i, level in enumerate(levels):
                # Greedy spends the probe's deferred backward: probe again for each sparsity.
                pass_ = first
                if i and method == "greedy":
                    pass_ = probe(runner, inputs, first.targets, extra, grad=True)
                chosen[level] = _direct_masks(method, runner, inputs, pass_, extra, level, options)
        else:
            scores = _scores(method, runner, inputs, first, extra, options)
            for level in levels:
                chosen[level] = threshold_masks(scores, level, threshold)
            if keep_scores:
                kept = NeuronScores(
                    scores, first.names, first.targets, first.logits, runner.activations or ()
                )
            del scores
    pathways = {
        level: _pathway(
            first,
            runner,
            method,
            masks,
            torch.full((inputs.shape[0],), level, device=inputs.device),
        )
        for level, masks in chosen.items()
    }
    return pathways, kept


def _check_method(method: str, options: dict) -> None:
    if method not in PATHWAY_METHODS:
        raise UserError(f"unknown pathway method {method!r}; choose from {list(PATHWAY_METHODS)}")
    check_options(method, options, METHOD_OPTIONS[method])
    check_values(method, options)


def _pathway(first, runner, method: str, masks, requested: torch.Tensor) -> Pathway:
    """The Pathway of ``masks`` selected after the probe pass ``first``."""
    return Pathway(
        masks=masks,
        sites=first.names,
        targets=first.targets,
        method=method,
        requested_sparsity=requested,
        activations=runner.activations,
        full_logits=target_outputs(first.logits, first.targets),
        info={} if runner.note is None else {"activations_note": runner.note},
    )


def _check_threshold(method: str, threshold: str | None) -> str:
    """The threshold kind to use: the method's default when None; refuses unknown kinds."""
    if threshold is None:
        threshold = "per_layer" if method == "random" else "global"
    if threshold not in THRESHOLDS:
        raise UserError(f"threshold must be one of {list(THRESHOLDS)}, got {threshold!r}")
    return threshold


def _warn_empty_calls(pathway: Pathway) -> None:
    """A call with no kept neuron cuts the network: the response no longer depends on the input."""
    empty = pathway.empty_calls()
    if empty:
        names = ", ".join(
            f"{pathway.sites[c]} ({n} example(s))" for c, n in list(empty.items())[:3]
        )
        more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        warnings.warn(
            f"the {pathway.method} pathway keeps no neuron of call(s) {names}{more}: the masked "
            "network's output no longer depends on the input there and its pathway gradient is 0. "
            "Lower the sparsity or use threshold='per_layer'.",
            stacklevel=3,
        )


SCORING_METHODS = ("neuron_mct", "neuron_intgrad", "random", "dgr")


def score_neurons(
    model,
    inputs: torch.Tensor,
    target=None,
    method: str = "neuron_mct",
    *,
    activations: Activations = AUTO,
    additional_forward_args=None,
    **options,
) -> NeuronScores:
    """Score every neuron (step 2) without thresholding.

    ``method`` is one of ``"neuron_mct"`` (|a dy/da|), ``"neuron_intgrad"``, ``"random"`` or
    ``"dgr"`` (gate values). Returns :class:`NeuronScores`: ``scores[i]`` is shaped like call i's
    output (B, ...); ``logits`` (B, K) are the full network's.
    """
    if method not in SCORING_METHODS:
        raise UserError(
            f"score_neurons takes one of {list(SCORING_METHODS)}, got {method!r} "
            "(greedy and dead select masks directly: use select_pathway)"
        )
    check_options(method, options, METHOD_OPTIONS[method])
    check_values(method, options)
    inputs = check_inputs(inputs, model)
    extra = forward_args(additional_forward_args)
    runner = ActivationRunner(model, activations)
    with preserved(model):
        first = probe(runner, inputs, target, extra, grad=method == "neuron_mct")
        scores = _scores(method, runner, inputs, first, extra, options)
    return NeuronScores(scores, first.names, first.targets, first.logits, runner.activations or ())


def _scores(method, runner, inputs, first, extra, options):
    if method == "neuron_mct":
        from pathwaygrad.methods.neuron_mct import neuron_mct_scores

        return neuron_mct_scores(first)
    if method == "neuron_intgrad":
        from pathwaygrad.methods.neuron_intgrad import neuron_intgrad_scores

        return neuron_intgrad_scores(runner, inputs, first, extra, **options)
    if method == "random":
        from pathwaygrad.methods.random import random_scores

        return random_scores([a.shape for a in first.acts], device=inputs.device, **options)
    if method == "dgr":
        from pathwaygrad.methods.dgr import dgr_scores

        return dgr_scores(runner, inputs, first, extra, **options)
    raise AssertionError(method)


def _direct_masks(method, runner, inputs, first, extra, level, options):
    if method == "dead":
        from pathwaygrad.methods.dead import dead_masks

        return dead_masks(first)
    from pathwaygrad.methods.greedy import greedy_masks

    return greedy_masks(runner, inputs, first, extra, sparsity=level, **options)


def pathway_logits(
    model, inputs: torch.Tensor, pathway: Pathway, *, additional_forward_args=None
) -> torch.Tensor:
    """Logits (B, K) of the network restricted to ``pathway`` (pruned neurons output 0).

    ``pathway.full_logits`` holds the full network's target logit for comparison.
    """
    from pathwaygrad.errors import PathwayMismatchError

    inputs = check_inputs(inputs, model, grad=False)
    if pathway.batch_size != inputs.shape[0]:
        raise PathwayMismatchError(
            f"the pathway holds {pathway.batch_size} example(s) but inputs hold {inputs.shape[0]}"
        )
    runner = ActivationRunner(model, pathway.activations)
    masks = [m.to(inputs.device) for m in pathway.masks]
    with preserved(model):
        return masked_logits(runner, inputs, masks, forward_args(additional_forward_args))


def masked_logits(runner, inputs, masks, extra=()) -> torch.Tensor:
    """Logits (B, K) of the network restricted to ``masks`` (no gradient)."""
    with torch.no_grad():
        logits, _, _ = run_model(runner, inputs, MaskTransform(masks), extra)
    return logits


def masked_target_logits(runner, inputs, masks, targets, extra=()) -> torch.Tensor:
    """Target logit (B,) of the network restricted to ``masks``."""
    return target_outputs(masked_logits(runner, inputs, masks, extra), targets)


def _adaptive(runner, inputs, first, extra, scores, threshold, cands, tolerance, criterion):
    """Per example, the sparsest candidate whose pathway keeps the target response within tolerance.

    Returns masks, the chosen sparsity (B,) and the pathway's target logit (B,).
    """
    full = target_outputs(first.logits, first.targets)
    full_prob = target_outputs(torch.softmax(first.logits, dim=1), first.targets)
    batch = inputs.shape[0]
    chosen: list[torch.Tensor | None] = [None] * len(scores)
    requested = torch.full((batch,), float("nan"), device=full.device)
    kept_logits = torch.full((batch,), float("nan"), dtype=full.dtype, device=full.device)
    todo = torch.ones(batch, dtype=torch.bool, device=full.device)
    for i, level in enumerate(cands):
        masks = threshold_masks(scores, level, threshold)
        all_logits = masked_logits(runner, inputs, masks, extra)
        logit = target_outputs(all_logits, first.targets)
        if criterion == "logit":
            ok = (logit - full).abs() <= tolerance * full.abs()
        else:
            prob = target_outputs(torch.softmax(all_logits, dim=1), first.targets)
            ok = (prob - full_prob).abs() <= tolerance * full_prob
        take = todo & (ok | torch.tensor(i == len(cands) - 1, device=full.device))
        if take.any():
            for c, m in enumerate(masks):
                before = chosen[c]
                chosen[c] = (
                    m.clone()
                    if before is None
                    else torch.where(take.view(-1, *([1] * (m.ndim - 1))), m, before)
                )
            requested[take] = level
            kept_logits = torch.where(take, logit, kept_logits)
            todo &= ~take
        if not todo.any():
            break
    return chosen, requested, kept_logits

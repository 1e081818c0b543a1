"""ROAR / KAR saliency maps: computed once per method, in shards, cached on disk by content.

Every training and test image gets a per-pixel score (float32 (N, H, W), see :mod:`._ranking`) per
method, stored as ``out_dir/maps/<label>-<method hash>/<split>_<rank_by>.npy`` beside a JSON file
holding the cache key: the method with its options, ``rank_by``, ``target``, the staged data's
fingerprint and the explaining model's weight fingerprint. A map whose key matches is never
recomputed; maps of other data or another model are recomputed, never reused.

The computation is split into shards (ranges of whole batches, see :class:`MapShard`); an
executor that ``shards_maps`` (Ray) runs them as parallel tasks, the others run them one after the
other in this process. Shards start at multiples of the batch sizes, so the batches, and so the
maps, are the same whichever way they are computed. Every finished shard is kept on disk
(``.../shards/``, with its cache key) until its split is complete, so a killed run loses at most
the shard in progress.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pathwaygrad._io import load_json, load_npy, save_npy, write_json
from pathwaygrad.evaluation._executor import Executor, Job, array_input
from pathwaygrad.evaluation._methods import explain_in_batches, predict
from pathwaygrad.evaluation._ranking import pixel_scores
from pathwaygrad.evaluation._staging import StagedData
from pathwaygrad.specs import MethodSpec

__all__ = [
    "DEFAULT_SHARD_IMAGES",
    "MapShard",
    "compute_maps",
    "map_key",
    "map_shard",
    "model_fingerprint",
    "safe_name",
]

DEFAULT_SHARD_IMAGES = 2048
SPLITS = ("train", "test")


def safe_name(text: str) -> str:
    """``text`` reduced to file-name-safe characters (at most 60)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-")[:60] or "method"


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's parameters and buffers (which model made the maps)."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def map_key(
    spec: MethodSpec,
    rank_by: str,
    target: str,
    data: str,
    model: str,
    activations: tuple[str, ...] | None = None,
) -> dict:
    """The cache key of one method's maps (``data``, ``model``: fingerprints)."""
    key = {
        "method": spec.describe(),
        "rank_by": rank_by,
        "target": target,
        "data": data,
        "model": model,  # maps of another model are not reused
    }
    if activations is not None:  # absent for the default (ReLU), so older caches stay valid
        key["activations"] = list(activations)
    return key


def _paths(root: Path, spec: MethodSpec, split: str, rank_by: str) -> tuple[Path, Path]:
    folder = root / "maps" / f"{safe_name(spec.label)}-{spec.fingerprint()}"
    return folder / f"{split}_{rank_by}.npy", folder / f"{split}_{rank_by}.json"


def _shard_paths(path: Path, start: int, stop: int) -> tuple[Path, Path]:
    """Where the finished shard ``start:stop`` of the map at ``path`` waits for its split."""
    stem = path.parent / "shards" / f"{path.stem}_{start:08d}_{stop:08d}"
    return stem.with_suffix(".npy"), stem.with_suffix(".json")


def _finished_shard(path: Path, start: int, stop: int, key: dict, hw: tuple[int, ...]):
    """The scores of a shard finished by an earlier run under the same key, else None."""
    npy, meta = _shard_paths(path, start, stop)
    if not (npy.exists() and meta.exists()) or load_json(meta).get("key") != key:
        return None
    scores = load_npy(npy)
    return scores if scores.shape == (stop - start, *hw) else None


@dataclass(frozen=True)
class MapShard:
    """Pixel scores of ``spec`` for the images ``start:stop`` of one split.

    ``target``: ``"predicted"`` (the model's class) or ``"label"``; ``device``: where the task
    moves its copy of the model (None: leave it where it is).
    """

    spec: MethodSpec
    split: str
    start: int
    stop: int
    rank_by: str
    target: str
    batch_size: int
    device: str | None = None
    progress: bool = False
    activations: tuple[str, ...] | None = None


def map_shard(*, settings: MapShard, inputs: dict[str, Any]) -> np.ndarray:
    """Compute one :class:`MapShard`; ``inputs``: ``x``, ``y`` (paths or arrays) and ``model``."""
    s = settings
    model = inputs["model"]
    if s.device is not None:
        model = model.to(s.device)
    x = torch.from_numpy(np.array(array_input(inputs["x"])[s.start : s.stop], dtype=np.float32))
    n, _, h, w = x.shape
    if s.target == "label":
        t = torch.from_numpy(np.array(array_input(inputs["y"])[s.start : s.stop], dtype=np.int64))
    else:
        t = predict(model, x, batch_size=max(256, s.batch_size)).argmax(1)
    scores = np.empty((n, h, w), dtype=np.float32)
    for start, maps in explain_in_batches(
        model,
        x,
        t,
        s.spec,
        batch_size=s.batch_size,
        progress=s.progress,
        desc=f"maps {s.spec.label} ({s.split} {s.start}-{s.stop})",
        activations=s.activations,
    ):
        scores[start : start + maps.shape[0]] = pixel_scores(maps, s.rank_by, size=(h, w)).numpy()
    return scores


def _bounds(n: int, batch_size: int, shard_images: int) -> list[tuple[int, int]]:
    """Shards of about ``shard_images`` images, each starting at a multiple of the batch size."""
    align = math.lcm(batch_size, max(256, batch_size))
    size = max(align, -(-shard_images // align) * align)
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _complete(entry: dict) -> None:
    """Write a split's whole map and its key; drop the shards it was assembled from."""
    save_npy(entry["path"], entry["scores"])
    write_json(
        entry["meta"],
        {"key": entry["key"], "shape": list(entry["scores"].shape), "dtype": "float32"},
    )
    entry["scores"] = None
    stem = entry["path"].stem
    for f in (entry["path"].parent / "shards").glob(f"{stem}_*"):
        f.unlink(missing_ok=True)


def compute_maps(
    model: nn.Module,
    model_key: str,
    specs: Sequence[MethodSpec],
    data: StagedData,
    root: Path,
    *,
    rank_by: str,
    target: str,
    batch_size: int,
    executor: Executor | None = None,
    shard_images: int = DEFAULT_SHARD_IMAGES,
    device: str | None = None,
    progress: bool = False,
    activations: tuple[str, ...] | None = None,
) -> dict[str, dict[str, str]]:
    """Train and test pixel scores of every spec (cached); returns label -> split -> ``.npy`` path.

    Missing maps are computed as :class:`MapShard` jobs of ``shard_images`` images (rounded to
    whole batches): through ``executor`` when it ``shards_maps``, else in this process, one after
    the other. Finished shards are kept until their split is complete (resumable).
    ``activations``: the activation kinds pathway methods select in.
    """
    sharded = executor is not None and executor.shards_maps
    out: dict[str, dict[str, str]] = {}
    jobs: list[Job] = []
    pending: dict[tuple[str, str], dict] = {}
    for spec in specs:
        out[spec.label] = {}
        acts = activations if spec.is_pathway else None
        key = map_key(spec, rank_by, target, data.fingerprint, model_key, acts)
        for split in SPLITS:
            path, meta_path = _paths(root, spec, split, rank_by)
            out[spec.label][split] = str(path)
            if path.exists() and meta_path.exists() and load_json(meta_path).get("key") == key:
                continue
            n = data.size(split)
            bounds = _bounds(n, batch_size, shard_images)
            h, w = data.shape[1:]
            entry = pending[(spec.label, split)] = {
                "scores": np.empty((n, h, w), dtype=np.float32),
                "left": len(bounds),
                "path": path,
                "meta": meta_path,
                "key": key,
            }
            inputs = {**data.split(split), "model": model}
            for a, b in bounds:
                kept = _finished_shard(path, a, b, key, (h, w))
                if kept is not None:  # finished by an earlier, interrupted run
                    entry["scores"][a:b] = kept
                    entry["left"] -= 1
                    continue
                settings = MapShard(
                    spec=spec,
                    split=split,
                    start=a,
                    stop=b,
                    rank_by=rank_by,
                    target=target,
                    batch_size=batch_size,
                    device=device if sharded else None,
                    progress=progress and not sharded,
                    activations=activations,
                )
                key_ = f"maps-{safe_name(spec.label)}-{split}-{a}"
                jobs.append(Job(key_, map_shard, {"settings": settings}, inputs))
    for entry in pending.values():
        if entry["left"] == 0:  # every shard was kept: only the assembling was left
            _complete(entry)
    if not jobs:
        return out
    bar = None
    if progress and sharded:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="map shards", unit="shard")

    def done(job: Job, scores: np.ndarray) -> None:
        s: MapShard = job.kwargs["settings"]
        entry = pending[(s.spec.label, s.split)]
        entry["scores"][s.start : s.stop] = scores
        entry["left"] -= 1
        if entry["left"] == 0:
            _complete(entry)
        else:  # kept until the split is complete: a killed run resumes from here
            npy, meta = _shard_paths(entry["path"], s.start, s.stop)
            save_npy(npy, scores)
            write_json(meta, {"key": entry["key"], "start": s.start, "stop": s.stop})
        if bar is not None:
            bar.update(1)

    try:
        if sharded:
            assert executor is not None
            executor.run(jobs, done)
        else:  # in this process: a method's own errors keep their type
            for job in jobs:
                done(job, job())
    finally:
        if bar is not None:
            bar.close()
    return out

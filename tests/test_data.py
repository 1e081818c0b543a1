"""Data loading: both CIFAR-10 formats (on fixtures made here), ImageFolder, archives, image files."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pathwaygrad.data import (
    CIFAR10_CLASSES,
    ArrayImageDataset,
    find_cifar10,
    load_cifar10,
    load_image,
    load_image_folder,
    read_cifar10_batches,
    resize_array,
    sample_photo,
    unpack_archive,
)
from pathwaygrad.data.cache import file_sha256
from pathwaygrad.errors import UserError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHWAYGRAD_CACHE", str(tmp_path / "cache"))


def write_cifar_pickles(folder: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0):
    """A miniature ``cifar-10-batches-py``: returns {split: (images NHWC uint8, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    truth = {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        imgs = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        flat = imgs.transpose(0, 3, 1, 2).reshape(n, -1)  # the format: R plane, G plane, B plane
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": flat, b"labels": labels, b"batch_label": name.encode()}, fh)
        split = "test" if name == "test_batch" else "train"
        truth[split][0].append(imgs)
        truth[split][1].extend(labels)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, fh)
    return {k: (np.concatenate(v[0]), np.asarray(v[1])) for k, v in truth.items()}


def write_image_folder(root: Path, per_class: int = 2, classes=("b_dog", "a_cat"), size=32):
    """An ImageFolder tree of PNGs; returns {(class, index): array}."""
    rng = np.random.default_rng(1)
    arrays = {}
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i:04d}.png")
            arrays[(c, i)] = arr
    (root / classes[0] / "notes.txt").write_text("not an image")
    return arrays


def test_cifar_pickles_read_exactly(tmp_path):
    truth = write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    for split in ("train", "test"):
        images, labels = read_cifar10_batches(tmp_path / "cifar-10-batches-py", split)
        np.testing.assert_array_equal(images, truth[split][0])
        np.testing.assert_array_equal(labels, truth[split][1])
    assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8


@pytest.mark.parametrize("which", ["parent", "folder"])
def test_load_cifar10_pickle_format(tmp_path, which):
    truth = write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    root = tmp_path if which == "parent" else tmp_path / "cifar-10-batches-py"
    ds = load_cifar10(root, "train", mean=None)
    assert len(ds) == 20 and ds.classes == list(CIFAR10_CLASSES)
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    expected = torch.from_numpy(truth["train"][0][3]).permute(2, 0, 1).float() / 255
    assert torch.allclose(x, expected) and y == truth["train"][1][3]


def test_load_cifar10_normalises_with_imagenet_stats(tmp_path):
    truth = write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    ds = load_cifar10(tmp_path, "test")
    x, _ = ds[0]
    raw = torch.from_numpy(truth["test"][0][0]).permute(2, 0, 1).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert torch.allclose(x, (raw - mean) / std, atol=1e-6)


def test_load_cifar10_image_folder_and_archive(tmp_path):
    tree = tmp_path / "data" / "cifar10"
    train = write_image_folder(tree / "train", per_class=3)
    write_image_folder(tree / "test", per_class=1)
    ds = load_cifar10(tmp_path / "data", "train", mean=None)
    assert ds.classes == ["a_cat", "b_dog"]  # sorted folder names = labels 0, 1
    assert len(ds) == 6 and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(ds.images[0], train[("a_cat", 0)])  # PNG is lossless
    # decoded arrays are cached as .npy outside the tree and reused
    cached = list((tmp_path / "cache" / "arrays").glob("*.npy"))
    assert len(cached) == 1
    again = load_cifar10(tmp_path / "data", "train", mean=None)
    np.testing.assert_array_equal(again.images, ds.images)
    # the same tree as a .tar.gz is unpacked into the cache folder
    archive = tmp_path / "cifar10-mini.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="cifar10")
    kind, folder = find_cifar10(archive)
    assert kind == "folder" and (tmp_path / "cache") in folder.parents
    from_archive = load_cifar10(archive, "test", mean=None)
    assert len(from_archive) == 2


def test_unpack_archive_refuses_escaping_members(tmp_path):
    evil = tmp_path / "evil.tar"
    (tmp_path / "payload").write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(tmp_path / "payload", arcname="../../escaped")
    with pytest.raises(UserError, match="cannot unpack"):
        unpack_archive(evil, tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()


def test_load_cifar10_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_cifar10(tmp_path / "nope", "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no CIFAR-10 found"):
        load_cifar10(tmp_path / "empty", "test")
    write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    with pytest.raises(UserError, match="split"):
        load_cifar10(tmp_path, "validation")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a CIFAR-10 batch file"):
        load_cifar10(tmp_path, "test")


def test_image_folder_sizes(tmp_path):
    write_image_folder(tmp_path / "a", classes=("x",), size=32)
    Image.new("RGB", (20, 24)).save(tmp_path / "a" / "x" / "odd.png")
    with pytest.raises(UserError, match="differ in size"):
        load_image_folder(tmp_path / "a", cache=False)
    ds = load_image_folder(tmp_path / "a", size=16, cache=False)
    assert ds.images.shape == (3, 16, 16, 3)


def test_array_dataset_batches_and_subsets():
    images = np.arange(10 * 2 * 2 * 3, dtype=np.uint8).reshape(10, 2, 2, 3)
    labels = np.array([0, 1] * 5)
    ds = ArrayImageDataset(images, labels, ["a", "b"], mean=(0.5,) * 3, std=(0.5,) * 3)
    x, y = ds.get_batch([9, 1])
    assert x.shape == (2, 3, 2, 2) and y.tolist() == [1, 1]
    assert torch.allclose(x[1, :, 0, 0], (torch.tensor([12.0, 13, 14]) / 255 - 0.5) / 0.5)
    sub = ds.subset(4, per_class=True)
    assert len(sub) == 4 and sorted(sub.labels.tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="labels"):
        ArrayImageDataset(images, labels[:3], ["a", "b"])


def test_load_image_formats_and_errors(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "a_alpha.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    (tmp_path / "text.png").write_text("hello")

    x = load_image(tmp_path / "a.png")
    assert x.shape == (3, 40, 60) and float(x.max()) <= 1.0
    assert torch.allclose(x * 255, torch.from_numpy(rgb).permute(2, 0, 1).float())
    assert load_image(tmp_path / "a.jpg", 32, crop=True).shape == (3, 32, 32)
    assert load_image(tmp_path / "a_alpha.png", convert=False).shape == (3, 40, 60)
    assert load_image(tmp_path / "grey.png").shape == (3, 40, 60)  # converted by default
    with pytest.raises(UserError, match="grey-scale image .* takes 3"):
        load_image(tmp_path / "grey.png", convert=False)
    with pytest.raises(UserError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(UserError, match="not a readable image"):
        load_image(tmp_path / "text.png")
    with pytest.raises(UserError, match="folder"):
        load_image(tmp_path)


def test_resize_and_sample_photo():
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    assert resize_array(arr, 5).shape == (5, 5, 3)
    cat = sample_photo("chelsea", 32)
    assert cat.shape == (3, 32, 32) and 0.0 <= float(cat.min()) and float(cat.max()) <= 1.0
    with pytest.raises(UserError, match="unknown sample photo"):
        sample_photo("dog")


# ------------------------------------------------------------------ caches keyed by content (13.1)
def _archive(path: Path, tree: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree, arcname="cifar10")
    return path


def _trees(tmp_path):
    big, small = tmp_path / "big" / "cifar10", tmp_path / "small" / "cifar10"
    for root, n in ((big, 3), (small, 1)):
        write_image_folder(root / "train", per_class=n)
        write_image_folder(root / "test", per_class=n)
    return big, small


def test_two_archives_with_the_same_name_never_share_an_unpack(tmp_path):
    big, small = _trees(tmp_path)
    a = _archive(tmp_path / "a" / "cifar10-jpeg.tar.gz", big)
    b = _archive(tmp_path / "b" / "cifar10-jpeg.tar.gz", small)
    assert len(load_cifar10(a, "train", mean=None)) == 6
    # the same file name, other content: its own images, not the first archive's
    assert len(load_cifar10(b, "train", mean=None)) == 2
    assert unpack_archive(a) != unpack_archive(b)
    # an archive replaced in place by another one of the same name is unpacked again
    _archive(a, small)
    os.utime(a, ns=(1, 1))  # whatever its time stamp
    assert len(load_cifar10(a, "train", mean=None)) == 2


def test_the_same_archive_is_unpacked_once_and_hashed_once(tmp_path, monkeypatch):
    big, _ = _trees(tmp_path)
    a = _archive(tmp_path / "a" / "data.tar.gz", big)
    first = unpack_archive(a)
    copy = tmp_path / "elsewhere" / "data.tar.gz"
    copy.parent.mkdir()
    shutil.copy2(a, copy)

    def no_unpack(*args, **kwargs):
        raise AssertionError("unpacked again")

    monkeypatch.setattr(tarfile, "open", no_unpack)
    assert unpack_archive(a) == first  # reused
    assert unpack_archive(copy) == first  # same content elsewhere: same unpack
    hashed = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: hashed.append(a) or real(*a))
    assert file_sha256(a) == real(a.read_bytes()).hexdigest()
    assert not any(a_ == () for a_ in hashed)  # the file's hash came from the index, not a rehash


def test_a_marker_of_another_archive_is_not_trusted(tmp_path):
    big, _ = _trees(tmp_path)
    a = _archive(tmp_path / "a" / "data.tar.gz", big)
    target = unpack_archive(a)
    marker = json.loads((target / ".complete").read_text())
    assert marker == {"source": str(a.resolve()), "sha256": file_sha256(a)}
    (target / ".complete").write_text(json.dumps({**marker, "sha256": "0" * 64}))
    shutil.rmtree(target / "cifar10" / "train")  # a half-finished or foreign folder
    assert unpack_archive(a) == target
    assert (target / "cifar10" / "train").is_dir()
    assert json.loads((target / ".complete").read_text()) == marker


def test_a_killed_unpack_leaves_nothing_that_looks_finished_and_is_cleaned(tmp_path):
    big, _ = _trees(tmp_path)
    a = _archive(tmp_path / "a" / "data.tar.gz", big)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = tmp_path / "cache" / f".pgtmp.{proc.pid}.abcd.data"
    (stale / "cifar10").mkdir(parents=True)
    target = unpack_archive(a)
    assert not stale.exists() and (target / ".complete").is_file()


def test_array_cache_sees_an_image_replaced_in_place(tmp_path):
    write_image_folder(tmp_path / "f", per_class=2)
    first = load_image_folder(tmp_path / "f")
    img = tmp_path / "f" / "a_cat" / "0000.png"
    new = np.full((32, 32, 3), 7, dtype=np.uint8)
    Image.fromarray(new).save(img)  # same name, same folder: the folder's mtime may not change
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_image_folder(tmp_path / "f")
    np.testing.assert_array_equal(again.images[0], new)
    assert not np.array_equal(first.images[0], new)


def test_dataset_fingerprint_follows_the_content():
    images = np.zeros((4, 2, 2, 3), dtype=np.uint8)
    ds = ArrayImageDataset(images, [0, 1, 0, 1], ["a", "b"])
    same = ArrayImageDataset(images.copy(), [0, 1, 0, 1], ["a", "b"])
    assert ds.fingerprint() == same.fingerprint()
    changed = images.copy()
    changed[2, 1, 1, 0] = 1
    assert ArrayImageDataset(changed, [0, 1, 0, 1], ["a", "b"]).fingerprint() != ds.fingerprint()
    assert ArrayImageDataset(images, [0, 1, 1, 1], ["a", "b"]).fingerprint() != ds.fingerprint()
    assert ds.subset(2).fingerprint() != ds.fingerprint()


# ------------------------------------------------------------------ no code from data files (13.3)
class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_batches_of_any_pickle_protocol_load(tmp_path, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    truth = write_cifar_pickles(folder)
    for name in ["test_batch", "batches.meta"]:  # rewrite with the protocol under test
        with open(folder / name, "rb") as fh:
            entry = pickle.load(fh)
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=protocol)
    images, labels = read_cifar10_batches(folder, "test")
    np.testing.assert_array_equal(images, truth["test"][0])
    assert load_cifar10(tmp_path, "test").classes == list(CIFAR10_CLASSES)


def test_crafted_cifar_batch_runs_no_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_pickles(folder)
    marker = tmp_path / "pwned"
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": _Payload(marker), b"labels": [0]}, fh)
    with pytest.raises(UserError, match=r"test_batch is not a CIFAR-10 batch file \(refused"):
        read_cifar10_batches(folder, "test")
    assert not marker.exists()
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": _Payload(marker)}, fh)
    load_cifar10(tmp_path, "train")  # falls back to the standard names
    assert not marker.exists()
    with open(folder / "batches.meta", "rb") as fh:  # control: the payload is real
        pickle.load(fh)
    assert marker.exists()


def test_crafted_array_cache_runs_no_code_and_is_recomputed(tmp_path):
    arrays = write_image_folder(tmp_path / "f", per_class=1)
    load_image_folder(tmp_path / "f")
    (cached,) = (tmp_path / "cache" / "arrays").glob("*.npy")
    marker = tmp_path / "pwned"
    np.save(cached, np.array([_Payload(marker)] * 2, dtype=object), allow_pickle=True)
    ds = load_image_folder(tmp_path / "f")
    assert not marker.exists()
    np.testing.assert_array_equal(ds.images[0], arrays[("a_cat", 0)])

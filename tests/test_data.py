"""Data loading: both CIFAR-10 formats (on fixtures made here), ImageFolder, archives, image files."""

from __future__ import annotations

import pickle
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

"""Data: CIFAR-10 (ImageFolder tree, torchvision pickles, or archive), any ImageFolder, image files.

Datasets are :class:`ArrayImageDataset` objects: uint8 arrays in memory, items
``(image (C, H, W) float32 normalised, label int)``, and a fast ``get_batch`` for training.
Unpacked archives and decoded arrays live in the cache folder (:func:`cache_dir`), never in the
repository.
"""

from pathwaygrad.data.arrays import IMAGENET_MEAN, IMAGENET_STD, ArrayImageDataset
from pathwaygrad.data.cache import cache_dir, shared_dir, unpack_archive
from pathwaygrad.data.cifar import (
    CIFAR10_CLASSES,
    find_cifar10,
    load_cifar10,
    read_cifar10_batches,
    shared_cifar10_archive,
)
from pathwaygrad.data.folder import list_image_folder, load_image_folder
from pathwaygrad.data.images import (
    IMAGE_EXTENSIONS,
    SAMPLE_PHOTOS,
    center_square,
    load_image,
    read_image_array,
    resize_array,
    sample_photo,
)

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "SAMPLE_PHOTOS",
    "ArrayImageDataset",
    "cache_dir",
    "center_square",
    "find_cifar10",
    "list_image_folder",
    "load_cifar10",
    "load_image",
    "load_image_folder",
    "read_cifar10_batches",
    "read_image_array",
    "resize_array",
    "sample_photo",
    "shared_cifar10_archive",
    "shared_dir",
    "unpack_archive",
]

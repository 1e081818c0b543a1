"""Models: CIFAR ResNet-20/32/44/56 (pretrained weights load), ResNet-8, a small VGG, a registry;
torchvision / timm models with their weights, preprocessing and class names (:mod:`.vision`).

All built-in models take (B, 3, 32, 32) RGB normalised with ImageNet mean/std (see
:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`) and return (B, num_classes) logits.
"""

from pathwaygrad.models.cifar_resnet import (
    CIFAR_RESNET_DEPTHS,
    CifarResNet,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
)
from pathwaygrad.models.named import (
    demo_weights_path,
    export_demo_weights,
    resolve_weights,
    shared_weights_path,
)
from pathwaygrad.models.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODELS,
    ModelInfo,
    Normalize,
    build_model,
    input_channels,
    load_model,
    model_info,
)
from pathwaygrad.models.resnet8 import ResNet8, resnet8
from pathwaygrad.models.vgg import SmallVGG, vgg_small, vgg_tiny
from pathwaygrad.models.vision import VisionModel, load_vision_model
from pathwaygrad.models.weights import load_weights, read_checkpoint, read_state_dict

__all__ = [
    "CIFAR_RESNET_DEPTHS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "CifarResNet",
    "ModelInfo",
    "Normalize",
    "ResNet8",
    "SmallVGG",
    "VisionModel",
    "build_model",
    "demo_weights_path",
    "export_demo_weights",
    "input_channels",
    "load_cifar_resnet",
    "load_model",
    "load_vision_model",
    "load_weights",
    "model_info",
    "read_checkpoint",
    "read_state_dict",
    "resolve_weights",
    "resnet8",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "shared_weights_path",
    "vgg_small",
    "vgg_tiny",
]


def load_cifar_resnet(depth: int, weights=None, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet of ``depth`` (20, 32, 44 or 56) with ``weights`` (a path) loaded; eval mode.

    The pretrained files of ``../shared/models/cifar10-resnet`` load directly (``module.`` stripped).
    """
    model = CifarResNet(depth, num_classes)
    if weights is not None:
        load_weights(model, weights, name=f"resnet{depth}")
    return model.eval()

"""A small VGG-style CIFAR network: three stages of two 3x3 conv + BN + ReLU, max-pooling between the stages.

Widths 32/64/128 by default (0.29 M parameters), global average pooling, one linear layer. ReLUs are
``nn.ReLU`` modules inside ``features`` (an ``nn.Sequential``, like torchvision's VGG), so Grad-CAM's
usual layer is ``features``.

Input: (B, 3, H, W) normalised RGB (H, W divisible by 4; 32x32 for CIFAR). Output: (B, num_classes).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallVGG", "vgg_small", "vgg_tiny"]


class SmallVGG(nn.Module):
    """[conv-BN-ReLU x2, maxpool] x 3, then global average pooling and a linear classifier."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for i, w in enumerate(widths):
            for _ in range(2):
                layers += [
                    nn.Conv2d(in_ch, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(),
                ]
                in_ch = w
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def vgg_small(num_classes: int = 10) -> SmallVGG:
    """Small VGG-style CIFAR network (widths 32/64/128)."""
    return SmallVGG(num_classes)


def vgg_tiny(num_classes: int = 10) -> SmallVGG:
    """Tiny VGG-style CIFAR network (widths 16/32/64, 72 k parameters): the demo's model."""
    return SmallVGG(num_classes, widths=(16, 32, 64))

"""ResNet-8 of the paper's CIFAR-10 ROAR setup (RoarTorch).

Stem: 3x3 conv, 3->64 channels, stride 1, BN, ReLU; three stages of one basic block each with 64, 128,
256 channels (stride 1, 2, 2); projection shortcuts (1x1 conv + BN) where the shape changes; global
average pooling; linear layer. ReLUs are ``nn.ReLU`` modules, one per call site.

Input: (B, 3, H, W) normalised RGB (any H, W >= 8; 32x32 for CIFAR). Output: (B, num_classes) logits.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResNet8", "resnet8"]


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus (projected) shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet8(nn.Module):
    """ResNet-8: basic blocks [1, 1, 1], widths (64, 128, 256), 3x3 stride-1 stem (1.2 M parameters)."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (64, 128, 256)):
        super().__init__()
        w1, w2, w3 = widths
        self.conv1 = nn.Conv2d(3, w1, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.relu = nn.ReLU()
        self.layer1 = BasicBlock(w1, w1, 1)
        self.layer2 = BasicBlock(w1, w2, 2)
        self.layer3 = BasicBlock(w2, w3, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(self.pool(out).flatten(1))


def resnet8(num_classes: int = 10) -> ResNet8:
    """ResNet-8 of the paper's ROAR experiments."""
    return ResNet8(num_classes)

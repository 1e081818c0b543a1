"""Benchmark models: VGG-16 and ResNet-50 (torchvision layer structure, random init), a CIFAR
ResNet-20, and torchvision's own ResNet-50 and ViT-B/16 (``tv_resnet50``, ``tv_vit_b_16``; need the
``vision`` extra).

The first two ImageNet architectures are written out here with torchvision's layer structure and
initialisation (they were written when torchvision did not import beside this project's torch; they
keep the earlier benchmark figures comparable):

- ``vgg16()``: 13 conv + ``nn.ReLU(inplace=True)`` in ``features``, ``AdaptiveAvgPool2d((7, 7))``,
  a classifier with two ``nn.ReLU(inplace=True)`` and two ``Dropout`` -> 15 ReLU calls, 13,555,712
  ReLU neurons at 224x224, one module per call.
- ``resnet50()``: bottleneck blocks [3, 4, 6, 3] (stride on the 3x3 conv, "v1.5"), each block reusing
  one ``relu`` module three times, as torchvision does -> 49 ReLU calls. ``distinct_relus=True`` gives
  the same network with one ``nn.ReLU`` module per call (Captum's layer methods need one module per
  call; parameter names are unchanged).
- ``resnet20()``: CIFAR ResNet-20 (option-A shortcuts, functional ``F.relu``, 19 calls) from
  :mod:`pathwaygrad.models` when it is there, else the copy below; ``relu_modules=True`` gives the
  same network with ``nn.ReLU`` modules (same parameter names, so weights load both ways).

All models are returned in eval mode with parameters requiring grad (as users have them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MODEL_ACTIVATIONS",
    "MODEL_INPUTS",
    "build",
    "resnet20",
    "resnet50",
    "tv_resnet50",
    "tv_vit_b_16",
    "vgg16",
]

_VGG16_CFG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_ch = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample=None, distinct=False
    ):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        # Distinct modules hold no parameters, so the state dict is the same either way.
        self.relu2 = nn.ReLU(inplace=True) if distinct else self.relu
        self.relu3 = nn.ReLU(inplace=True) if distinct else self.relu
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu3(out)


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000, distinct_relus: bool = False):
        super().__init__()
        self.inplanes = 64
        self._distinct = distinct_relus
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, self._distinct)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [
            Bottleneck(self.inplanes, planes, distinct=self._distinct) for _ in range(1, blocks)
        ]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _ShortcutA(nn.Module):
    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class _BasicBlockA(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1, relu_modules: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = _ShortcutA(planes // 4)
        else:
            self.shortcut = nn.Identity()
        self.relu1 = nn.ReLU() if relu_modules else F.relu
        self.relu2 = nn.ReLU() if relu_modules else F.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet20(nn.Module):
    """Same layout and parameter names as :class:`pathwaygrad.models.CifarResNet` (depth 20)."""

    def __init__(self, num_classes: int = 10, relu_modules: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU() if relu_modules else F.relu
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = [_BasicBlockA(in_planes, planes, stride, relu_modules)]
            blocks += [_BasicBlockA(planes, planes, 1, relu_modules) for _ in range(2)]
            stages.append(nn.Sequential(*blocks))
            in_planes = planes
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def vgg16(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return VGG().eval()


def resnet50(seed: int = 0, distinct_relus: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return ResNet50(distinct_relus=distinct_relus).eval()


def resnet20(seed: int = 0, relu_modules: bool = False) -> nn.Module:
    """CIFAR ResNet-20, random init. Functional ReLUs unless ``relu_modules``."""
    torch.manual_seed(seed)
    try:
        from pathwaygrad.models import resnet20 as pg_resnet20
    except Exception:  # the models package is optional for the benchmarks
        pg_resnet20 = None
    if pg_resnet20 is None:
        return CifarResNet20(relu_modules=relu_modules).eval()
    ref = pg_resnet20()
    if not relu_modules:
        return ref.eval()
    model = CifarResNet20(relu_modules=True)
    model.load_state_dict(ref.state_dict())
    return model.eval()


def _torchvision(name: str, seed: int = 0) -> nn.Module:
    """torchvision's own architecture ``name``, random init (seeded), eval mode."""
    import torchvision.models as tvm

    torch.manual_seed(seed)
    return tvm.get_model(name, weights=None).eval()


def tv_resnet50(seed: int = 0) -> nn.Module:
    return _torchvision("resnet50", seed)


def tv_vit_b_16(seed: int = 0) -> nn.Module:
    return _torchvision("vit_b_16", seed)


# name -> (factory, input shape of one example)
MODEL_INPUTS = {
    "vgg16": (vgg16, (3, 224, 224)),
    "resnet50": (resnet50, (3, 224, 224)),
    "resnet20": (resnet20, (3, 32, 32)),
    "tv_resnet50": (tv_resnet50, (3, 224, 224)),
    "tv_vit_b_16": (tv_vit_b_16, (3, 224, 224)),
}

# The activation kinds that hold neurons, where not ReLU (given explicitly so that no run pays
# for the "auto" detection pass).
MODEL_ACTIVATIONS: dict[str, tuple[str, ...]] = {"tv_vit_b_16": ("gelu",)}


def build(name: str, batch: int, seed: int = 0, size: int | None = None, **kwargs):
    """(model, inputs) for a benchmark: random weights, inputs ~ N(0, 1) of ``batch`` examples."""
    factory, shape = MODEL_INPUTS[name]
    model = factory(seed=seed, **kwargs)
    if size is not None:
        shape = (shape[0], size, size)
    g = torch.Generator().manual_seed(seed + 1)
    inputs = torch.randn(batch, *shape, generator=g)
    return model, inputs

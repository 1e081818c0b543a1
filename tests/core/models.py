"""Small test models. Each ``forward(x, gates=None, capture=None)`` can zero neurons *by hand*:
``gates[k]`` multiplies the output of activation call k, and ``capture`` collects the gated
activation tensors (with ``retain_grad``). This is the independent oracle for pathwaygrad's
interception: it touches the same neurons by explicit code instead of by interception.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Gated(nn.Module):
    def _gate(self, h, k, gates, capture):
        if gates is not None:
            h = h * gates[k]
        if capture is not None:
            if h.requires_grad:
                h.retain_grad()
            capture.append(h)
        return h


class PlainCNN(_Gated):
    """conv-ReLU-conv-ReLU-fc-ReLU-fc, one nn.ReLU module per call."""

    n_calls = 3

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.act2 = nn.ReLU()
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(16, classes)

    def forward(self, x, gates=None, capture=None):
        x = self._gate(self.act1(self.conv1(x)), 0, gates, capture)
        x = self._gate(self.act2(self.conv2(x)), 1, gates, capture)
        x = self._gate(self.act3(self.fc1(x.flatten(1))), 2, gates, capture)
        return self.fc2(x)


class ReusedInplaceCNN(_Gated):
    """One nn.ReLU(inplace=True) module called three times (torchvision style)."""

    n_calls = 3

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(6 * 8 * 8, classes)
        for bn in (self.bn1, self.bn2):
            nn.init.normal_(bn.running_mean, 0, 0.1)
            nn.init.uniform_(bn.running_var, 0.5, 1.5)

    def forward(self, x, gates=None, capture=None):
        x = self._gate(self.relu(self.bn1(self.conv1(x))), 0, gates, capture)
        x = self._gate(self.relu(self.bn2(self.conv2(x))), 1, gates, capture)
        x = self._gate(self.relu(x - 0.1), 2, gates, capture)
        return self.fc(x.flatten(1))


class FunctionalCNN(_Gated):
    """Only functional activation calls: F.relu, torch.relu, Tensor.relu, torch.relu_."""

    n_calls = 4

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 8 * 8, 12)
        self.fc2 = nn.Linear(12, classes)

    def forward(self, x, gates=None, capture=None):
        x = self._gate(F.relu(self.conv1(x)), 0, gates, capture)
        x = self._gate(torch.relu(self.conv2(x)), 1, gates, capture)
        x = self._gate(self.fc1(x.flatten(1)).relu(), 2, gates, capture)
        z = self.fc1.weight.new_zeros(1) + self.fc2(x) * 0.5
        h = torch.relu_(z * 1.0)  # in-place functional call on a fresh tensor
        h = self._gate(h, 3, gates, capture)
        return self.fc2(x) + h


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)


class ResidualNet(_Gated):
    """Residual blocks with functional ReLU after the addition (CIFAR ResNet style)."""

    n_calls = 5

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block1 = BasicBlock(8)
        self.block2 = BasicBlock(8)
        self.fc = nn.Linear(8, classes)

    def _block(self, b, x, k, gates, capture):
        out = self._gate(F.relu(b.conv1(x)), k, gates, capture)
        out = b.conv2(out) + x
        return self._gate(F.relu(out), k + 1, gates, capture)

    def forward(self, x, gates=None, capture=None):
        x = self._gate(F.relu(self.stem(x)), 0, gates, capture)
        x = self._block(self.block1, x, 1, gates, capture)
        x = self._block(self.block2, x, 3, gates, capture)
        return self.fc(x.mean(dim=(2, 3)))


class MLP(_Gated):
    """Fully connected network on flat inputs (B, 20)."""

    n_calls = 2

    def __init__(self, classes=5, act=nn.ReLU):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.a1 = act()
        self.fc2 = nn.Linear(32, 32)
        self.a2 = act()
        self.fc3 = nn.Linear(32, classes)

    def forward(self, x, gates=None, capture=None):
        x = self._gate(self.a1(self.fc1(x)), 0, gates, capture)
        x = self._gate(self.a2(self.fc2(x)), 1, gates, capture)
        return self.fc3(x)


def hand_gradient(model, x, gates, targets):
    """d y_target / dx of the network with ``gates`` multiplied in by hand."""
    x = x.detach().clone().requires_grad_(True)
    logits = model(x, gates=gates)
    y = logits.gather(1, targets[:, None]).sum()
    (g,) = torch.autograd.grad(y, x)
    return g


def hand_activations(model, x, gates, targets):
    """Gated activations a_k and dy/da_k by hand (retain_grad), for each call k."""
    capture = []
    xx = x.detach().clone().requires_grad_(True)
    logits = model(xx, gates=gates, capture=capture)
    y = logits.gather(1, targets[:, None]).sum()
    y.backward()
    acts = [h.detach() for h in capture]
    grads = [h.grad if h.grad is not None else torch.zeros_like(h) for h in capture]
    model.zero_grad(set_to_none=True)
    return acts, grads


class TransformerLike(_Gated):
    """Pre-norm transformer encoder on (B, T, D) tokens: attention (softmax, LayerNorm: not
    neurons) and an MLP with nn.GELU, mean-pooled into a linear head. Two GELU calls."""

    n_calls = 2

    def __init__(self, classes=5, dim=8, heads=2, blocks=2):
        super().__init__()
        self.norm1 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(blocks))
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(blocks)
        )
        self.norm2 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(blocks))
        self.up = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(blocks))
        self.act = nn.ModuleList(nn.GELU() for _ in range(blocks))
        self.down = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(blocks))
        self.head = nn.Linear(dim, classes)

    def forward(self, x, gates=None, capture=None):
        for k in range(len(self.up)):
            h = self.norm1[k](x)
            x = x + self.attn[k](h, h, h, need_weights=False)[0]
            h = self._gate(self.act[k](self.up[k](self.norm2[k](x))), k, gates, capture)
            x = x + self.down[k](h)
        return self.head(x.mean(dim=1))


class MobileLike(_Gated):
    """A MobileNetV3-like block without ReLU: stem conv-BN-Hardswish, depthwise conv-BN-
    Hardswish(inplace), squeeze-excitation with Hardswish and F.hardsigmoid, projection."""

    n_calls = 4

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.Hardswish()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = nn.Hardswish(inplace=True)
        self.se_reduce = nn.Conv2d(8, 4, 1)
        self.se_act = nn.Hardswish()
        self.se_expand = nn.Conv2d(4, 8, 1)
        self.project = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6, classes)
        for bn in (self.bn1, self.bn2):
            nn.init.normal_(bn.running_mean, 0, 0.1)
            nn.init.uniform_(bn.running_var, 0.5, 1.5)

    def forward(self, x, gates=None, capture=None):
        x = self._gate(self.act1(self.bn1(self.stem(x)) * 3), 0, gates, capture)
        x = self._gate(self.act2(self.bn2(self.dw(x)) * 3), 1, gates, capture)
        s = self._gate(
            self.se_act(self.se_reduce(x.mean(dim=(2, 3), keepdim=True))), 2, gates, capture
        )
        s = self._gate(F.hardsigmoid(self.se_expand(s) * 3), 3, gates, capture)
        x = self.project(x * s)
        return self.fc(x.mean(dim=(2, 3)))


def make(name: str, seed: int = 0, device="cpu") -> tuple[nn.Module, torch.Tensor]:
    """A model in eval mode and a batch of 4 inputs for it, on ``device``."""
    torch.manual_seed(seed)
    cls = {**MODELS, **OTHER_MODELS}[name]
    model = cls().eval()
    shape = {MLP: (4, 20), TransformerLike: (4, 5, 8)}.get(cls, (4, 3, 8, 8))
    return model.to(device), torch.randn(*shape).to(device)


# ReLU models (the paper's setting), and models whose neurons are other activation kinds.
MODELS = {
    "plain": PlainCNN,
    "reused_inplace": ReusedInplaceCNN,
    "functional": FunctionalCNN,
    "residual": ResidualNet,
    "mlp": MLP,
}
OTHER_MODELS = {"transformer": TransformerLike, "mobile": MobileLike}

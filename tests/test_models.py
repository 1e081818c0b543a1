"""Model zoo: shapes, architecture details, weight loading and its errors, pretrained accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pathwaygrad.errors import UserError
from pathwaygrad.models import (
    MODELS,
    CifarResNet,
    Normalize,
    build_model,
    load_cifar_resnet,
    load_model,
    load_weights,
)
from pathwaygrad.models.cifar_resnet import ShortcutA

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path | None:
    """``../shared`` beside the repository (data and pretrained weights), or None."""
    path = REPO.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture
def shared():
    root = shared_root()
    if root is None:
        pytest.skip(f"{REPO.parent / 'shared'} is absent (pretrained weights and CIFAR-10 copy)")
    return root


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_cifar_images_to_logits(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    assert not model.training


def test_parameter_counts_match_the_published_architectures():
    count = {n: sum(p.numel() for p in build_model(n).parameters()) for n in MODELS}
    assert count["resnet20"] == 269_722  # He et al.: 0.27 M
    assert 0.85e6 < count["resnet56"] < 0.86e6  # 0.85 M
    assert 1.2e6 < count["resnet8"] < 1.25e6  # [1,1,1] blocks at 64/128/256
    assert count["vgg_tiny"] < 100_000


def test_cifar_resnet_uses_functional_relu_and_option_a_shortcut():
    model = CifarResNet(20)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    shortcut = model.layer2[0].shortcut
    assert isinstance(shortcut, ShortcutA)
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    x = torch.randn(1, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (1, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])  # subsampled, zero-padded by planes/4
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(21)


def test_resnet8_layout():
    model = build_model("resnet8")
    assert model.conv1.stride == (1, 1) and model.conv1.out_channels == 64
    assert [model.layer1.conv1.out_channels, model.layer2.conv1.out_channels] == [64, 128]
    assert model.layer3.conv2.out_channels == 256 and model.fc.in_features == 256


def test_load_weights_strips_module_prefix_and_casts_half(tmp_path):
    torch.manual_seed(0)
    src = build_model("vgg_tiny")
    state = {
        f"module.{k}": v.half() if v.is_floating_point() else v for k, v in src.state_dict().items()
    }
    torch.save({"state_dict": state, "best_prec1": 1.0}, tmp_path / "w.th")
    dst = load_model("vgg_tiny", tmp_path / "w.th")
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(dst(x), src.eval()(x), atol=0.05)
    assert next(dst.parameters()).dtype == torch.float32


def test_weights_that_do_not_fit_name_the_problem(tmp_path):
    torch.save(build_model("resnet20").state_dict(), tmp_path / "r20.pt")
    with pytest.raises(UserError, match=r"do not fit model vgg_tiny: \d+ missing keys"):
        build_model("vgg_tiny", weights=tmp_path / "r20.pt")
    with pytest.raises(UserError, match="shape mismatch"):
        load_cifar_resnet(20, tmp_path / "r20.pt", num_classes=100)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read weights"):
        load_weights(build_model("resnet20"), tmp_path / "junk.pt")
    with pytest.raises(UserError, match="not found"):
        load_weights(build_model("resnet20"), tmp_path / "missing.pt")


def test_load_model_specs():
    assert isinstance(load_model("ResNet-20"), CifarResNet)
    m = load_model("pathwaygrad.models.vgg:vgg_tiny", num_classes=3)
    assert m(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(UserError, match="unknown model 'resnet999'"):
        load_model("resnet999")
    with pytest.raises(UserError, match="cannot import module"):
        load_model("no_such_package.mod:factory")
    with pytest.raises(UserError, match="has no attribute"):
        load_model("pathwaygrad.models.vgg:nothing")
    with pytest.raises(UserError, match="not a torch.nn.Module"):
        load_model("builtins:dict")
    with pytest.raises(UserError, match="without arguments failed"):
        load_model("json:dumps")


def test_normalize_module():
    norm = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert torch.allclose(norm(torch.ones(1, 3, 2, 2)), torch.full((1, 3, 2, 2), 2.0))


@pytest.mark.shared
def test_pretrained_resnet20_reaches_its_accuracy(shared):
    from pathwaygrad.data import load_cifar10
    from pathwaygrad.training import evaluate_accuracy

    archive = shared / "data" / "cifar10-jpeg.tar.gz"
    weights = sorted((shared / "models" / "cifar10-resnet").glob("resnet20-*.th"))
    if not archive.is_file() or not weights:
        pytest.skip("../shared lacks cifar10-jpeg.tar.gz or resnet20-*.th")
    test = load_cifar10(archive, "test").subset(500, per_class=True, seed=0)
    model = load_cifar_resnet(20, weights[0])
    acc = evaluate_accuracy(model, test)
    assert acc > 0.70, f"ResNet-20 scored {acc:.1%} on 500 JPEG test images (expected about 81 %)"
    # the same model with random weights is at chance: the accuracy comes from the weights
    assert evaluate_accuracy(CifarResNet(20), test) < 0.3


class _Payload:
    """Unpickling this object would create a file: a crafted weights file's code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.mark.parametrize("layout", ["bare", "state_dict"])
def test_crafted_pickle_in_a_weights_file_runs_no_code(tmp_path, layout):
    from pathwaygrad.models import read_checkpoint

    marker = tmp_path / "pwned"
    payload = _Payload(marker)
    state = build_model("vgg_tiny").state_dict()
    obj = {**state, "x": payload} if layout == "bare" else {"state_dict": state, "note": payload}
    torch.save(obj, tmp_path / "evil.pt")
    for load in (
        lambda: load_model("vgg_tiny", tmp_path / "evil.pt"),
        lambda: read_checkpoint(tmp_path / "evil.pt"),
    ):
        with pytest.raises(UserError, match="cannot read weights file .*evil.pt"):
            load()
    assert not marker.exists()


def test_unreadable_weights_name_the_file_and_the_fix(tmp_path):
    (tmp_path / "w.txt").write_text("hello")
    with pytest.raises(UserError) as info:
        load_model("resnet20", tmp_path / "w.txt")
    text = str(info.value)
    assert str(tmp_path / "w.txt") in text and "torch.save" in text and "\n" not in text
    good = tmp_path / "r20.pt"
    torch.save(build_model("resnet20").state_dict(), good)
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # truncated
    with pytest.raises(UserError, match="cannot read weights file .*r20.pt"):
        load_model("resnet20", good)
    with pytest.raises(UserError, match="is a folder, not a file"):
        load_model("resnet20", tmp_path)


def test_safetensors_weights_load(tmp_path):
    from safetensors.torch import save_file

    src = build_model("vgg_tiny")
    save_file(src.state_dict(), tmp_path / "w.safetensors")
    dst = load_model("vgg_tiny", tmp_path / "w.safetensors")
    for a, b in zip(src.state_dict().values(), dst.state_dict().values()):
        assert torch.equal(a, b)


def test_named_weights_resolve(tmp_path, monkeypatch):
    from pathwaygrad.models import demo_weights_path, resolve_weights

    assert resolve_weights("vgg_tiny", "demo") == demo_weights_path()
    folder = tmp_path / "models" / "cifar10-resnet"
    folder.mkdir(parents=True)
    (folder / "resnet32-0123.th").write_bytes(b"")
    monkeypatch.setenv("PATHWAYGRAD_SHARED", str(tmp_path))
    assert resolve_weights("resnet32", "shared") == folder / "resnet32-0123.th"
    with pytest.raises(UserError, match="no resnet20-\\*.th"):
        resolve_weights("resnet20", "shared")
    with pytest.raises(UserError, match="only, not 'vgg_tiny'"):
        resolve_weights("vgg_tiny", "shared")
    assert resolve_weights("resnet20", "w.pt") == "w.pt"


def test_no_library_is_patched_and_vision_packages_load_lazily():
    """torchvision / timm are imported only for a torchvision:/timm: model (fresh process)."""
    import subprocess
    import sys

    code = (
        "import sys, pathwaygrad, pathwaygrad.models as m, pathwaygrad.explainee;"
        "m.load_model('resnet20');"
        "assert 'torchvision' not in sys.modules and 'timm' not in sys.modules, 'imported';"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "ok", out.stderr
    src = REPO / "src" / "pathwaygrad"
    for path in src.rglob("*.py"):
        text = path.read_text()
        for needle in ("_C._dispatch", "torch.library", "def_impl", "register_fake"):
            assert needle not in text, f"{path} patches torch's operator registry ({needle})"


def test_missing_vision_package_is_one_line_with_the_fix(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail as if absent
    with pytest.raises(UserError, match=r"pip install 'pathwaygrad\[vision\]'") as info:
        load_model("timm:resnet18")
    assert "\n" not in str(info.value)


def test_bare_vision_names_point_at_the_prefix():
    with pytest.raises(UserError, match="'torchvision:NAME' / 'timm:NAME'"):
        load_model("resnet50")

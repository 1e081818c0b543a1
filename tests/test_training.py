"""Training loop: learning, best-validation restore, atomic checkpoints, exact resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Subset, TensorDataset

from pathwaygrad._io import TEMP_PREFIX
from pathwaygrad.errors import UserError
from pathwaygrad.training import (
    augment_batch,
    evaluate_accuracy,
    iterate_batches,
    load_checkpoint,
    train_classifier,
    train_val_split,
)


def toy_data(n=256, seed=0):
    """Label = whether the first channel is brighter than the second: learnable by a tiny CNN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > x[:, 1].mean((1, 2))).long()
    return TensorDataset(x, y)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )


def test_training_learns_a_separable_task():
    train, test = toy_data(512, 0), toy_data(256, 1)
    model = tiny_model()
    before = evaluate_accuracy(model, test)
    record = train_classifier(model, train, epochs=6, batch_size=64, lr=1e-2, progress=False)
    after = evaluate_accuracy(model, test)
    assert after > 0.85 and after > before + 0.2
    assert len(record["history"]) == 6 and record["best_val_acc"] is None
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"]


def test_learning_rate_is_halved_every_step():
    record = train_classifier(
        tiny_model(), toy_data(64), epochs=5, lr_step=2, batch_size=32, progress=False
    )
    assert [h["lr"] for h in record["history"]] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]


def test_best_validation_weights_are_restored(tmp_path):
    train, val = train_val_split(toy_data(320), 0.25, seed=0)
    assert len(val) == 80 and not set(train.indices) & set(val.indices)
    model = tiny_model()
    record = train_classifier(
        model, train, val, epochs=4, batch_size=32, lr=0.05, checkpoint_dir=tmp_path, progress=False
    )
    best = max(h["val_acc"] for h in record["history"])
    assert record["best_val_acc"] == best
    assert record["history"][record["best_epoch"] - 1]["val_acc"] == best
    assert abs(evaluate_accuracy(model, val) - best) < 1e-9
    saved = torch.load(tmp_path / "best.pt", weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(saved[k], v)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert not leftovers and not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    data, val = toy_data(200), toy_data(64, 2)
    straight = tiny_model()
    train_classifier(straight, data, val, epochs=3, batch_size=32, progress=False)

    first = tiny_model()
    r1 = train_classifier(
        first, data, val, epochs=2, batch_size=32, checkpoint_dir=tmp_path, progress=False
    )
    resumed = tiny_model(seed=123)  # a fresh process: different initial weights
    r2 = train_classifier(
        resumed, data, val, epochs=3, batch_size=32, checkpoint_dir=tmp_path, progress=False
    )
    assert r1["resumed_from"] == 0 and r2["resumed_from"] == 2 and r2["epochs"] == 3
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    # nothing left to do: a third call only restores the best weights
    r3 = train_classifier(
        tiny_model(7), data, val, epochs=3, batch_size=32, checkpoint_dir=tmp_path, progress=False
    )
    assert r3["resumed_from"] == 3 and len(r3["history"]) == 3


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    train_classifier(tiny_model(), toy_data(64), epochs=1, checkpoint_dir=tmp_path, progress=False)
    other = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    try:
        train_classifier(other, toy_data(64), epochs=2, checkpoint_dir=tmp_path, progress=False)
    except ValueError as exc:
        assert "does not fit this model" in str(exc)
    else:
        raise AssertionError("a mismatching checkpoint was accepted")


def test_batches_cover_subsets_once():
    data = toy_data(50)
    sub = Subset(data, list(range(10, 30)))
    xs, ys = zip(*iterate_batches(sub, 7, shuffle=True, generator=torch.Generator().manual_seed(0)))
    x = torch.cat(xs)
    assert x.shape[0] == 20
    idx = sorted(int((data.tensors[0] == xi).all(dim=(1, 2, 3)).nonzero()) for xi in x)
    assert idx == list(range(10, 30))


def test_augmentation_flips_and_crops_within_padding():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    outs = [augment_batch(x, padding=2, generator=g) for _ in range(20)]
    assert all(o.shape == x.shape for o in outs)
    # every output pixel is either padding (0) or a pixel of the same image
    for o in outs:
        for b in range(2):
            assert set(o[b].unique().tolist()) <= set(x[b].unique().tolist()) | {0.0}
    assert any(not torch.equal(o, x) for o in outs)
    flipped = augment_batch(x, padding=0, generator=torch.Generator().manual_seed(3))
    for b in range(2):
        assert torch.equal(flipped[b], x[b]) or torch.equal(flipped[b], x[b].flip(2))


def test_resume_with_other_settings_is_refused_and_the_checkpoint_kept(tmp_path):
    data = toy_data(64)
    train_classifier(
        tiny_model(), data, epochs=1, batch_size=32, checkpoint_dir=tmp_path, progress=False
    )
    before = (tmp_path / "last.pt").read_bytes()
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["settings"]["lr"] == 1e-3 and ckpt["settings"]["batch_size"] == 32
    for changed in ({"lr": 1e-2}, {"batch_size": 16}, {"seed": 1}, {"augment": False}):
        kwargs = {"batch_size": 32, **changed}
        with pytest.raises(UserError, match="belongs to a run with other settings") as info:
            train_classifier(
                tiny_model(), data, epochs=2, checkpoint_dir=tmp_path, progress=False, **kwargs
            )
        assert next(iter(changed)) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError, match="train_size 64 -> 32"):
        train_classifier(
            tiny_model(), toy_data(32), epochs=2, batch_size=32, checkpoint_dir=tmp_path,
            progress=False,
        )  # fmt: skip
    with pytest.raises(UserError, match="already trained 1 epochs, more than the 0"):
        train_classifier(
            tiny_model(), data, epochs=0, batch_size=32, checkpoint_dir=tmp_path, progress=False
        )
    assert (tmp_path / "last.pt").read_bytes() == before


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def test_crafted_checkpoint_runs_no_code(tmp_path):
    train_classifier(tiny_model(), toy_data(64), epochs=1, checkpoint_dir=tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)  # a real checkpoint is plain data
    marker = tmp_path / "pwned"
    ckpt["history"].append(_Payload(marker))
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(UserError, match="last.pt holds objects other than tensors"):
        train_classifier(
            tiny_model(), toy_data(64), epochs=2, checkpoint_dir=tmp_path, progress=False
        )
    assert not marker.exists()


def test_truncated_checkpoint_is_a_one_line_error_naming_the_file(tmp_path):
    train_classifier(tiny_model(), toy_data(64), epochs=1, checkpoint_dir=tmp_path, progress=False)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError) as info:
        train_classifier(
            tiny_model(), toy_data(64), epochs=2, checkpoint_dir=tmp_path, progress=False
        )
    msg = str(info.value)
    assert msg.startswith(f"cannot read checkpoint {tmp_path / 'last.pt'}: truncated")
    assert "delete it" in msg and "\n" not in msg
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "last.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "last.pt")
    with pytest.raises(UserError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "last.pt")


class _Interrupt(Exception):
    pass


def _interrupt_after(model: nn.Module, batches: int) -> nn.Module:
    """Raise _Interrupt at the ``batches``-th training forward (a killed run)."""
    calls = [0]

    def hook(module, args):
        if module.training:
            calls[0] += 1
            if calls[0] > batches:
                raise _Interrupt

    model.register_forward_pre_hook(hook)
    return model


def test_onecycle_schedule_warms_up_anneals_and_resumes_exactly(tmp_path):
    data, val = toy_data(256), toy_data(64, 2)
    kw = dict(epochs=6, batch_size=32, lr=1e-2, schedule="onecycle", progress=False)
    straight = tiny_model()
    record = train_classifier(straight, data, val, **kw)
    lrs = [h["lr"] for h in record["history"]]  # the rate at each epoch's end
    assert lrs[0] < lrs[1] and all(a > b for a, b in zip(lrs[1:], lrs[2:]))  # up, then down
    assert max(lrs) <= 1e-2 and lrs[-1] < 1e-4  # down to about zero
    # killed in epoch 3, then resumed in a fresh model: the same weights as straight through
    with pytest.raises(_Interrupt):
        train_classifier(
            _interrupt_after(tiny_model(), 8 * 2 + 3), data, val, checkpoint_dir=tmp_path, **kw
        )
    resumed = tiny_model(seed=5)
    r2 = train_classifier(resumed, data, val, checkpoint_dir=tmp_path, **kw)
    assert r2["resumed_from"] == 2
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    # the schedule spans the run's epochs: resuming with another count is refused
    with pytest.raises(UserError, match="other settings"):
        train_classifier(tiny_model(), data, val, checkpoint_dir=tmp_path, **{**kw, "epochs": 8})
    with pytest.raises(ValueError, match="schedule must be"):
        train_classifier(tiny_model(), data, epochs=1, schedule="cosine", progress=False)

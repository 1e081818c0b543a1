"""``pathwaygrad train``: happy path on a miniature CIFAR-10, resume, and bad input."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from pathwaygrad.cli.main import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHWAYGRAD_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def mini_cifar(tmp_path) -> Path:
    """``cifar-10-batches-py`` with 16 training images per batch file (80) and 20 test images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [(f"data_batch_{i}", 16) for i in range(1, 6)] + [("test_batch", 20)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
    return folder


def test_train_writes_weights_result_and_resumes(mini_cifar, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "vgg_tiny", "--data", str(mini_cifar), "--out", str(out)]
    args += ["--batch-size", "32", "--quiet"]
    assert main(args + ["--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "weights.pt" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 1 and result["test_images"] == 20
    assert result["train_images"] == 70 and result["val_images"] == 10  # 1/8 held out
    assert 0.0 <= result["test_accuracy"] <= 1.0
    saved = torch.load(out / "weights.pt", weights_only=True)
    assert saved["model"] == "vgg_tiny" and len(saved["classes"]) == 10
    assert saved["test_accuracy"] == result["test_accuracy"]
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()

    assert main(args + ["--epochs", "2"]) == 0  # resumes after epoch 1
    assert "resumed after epoch 1" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 2 and len(result["history"]) == 2

    # the weights explain with: the model name comes from the file
    from pathwaygrad.models import load_model

    model = load_model(saved["model"], out / "weights.pt")
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "-1"], "--epochs must be positive"),
        (["--val-fraction", "1.5"], "--val-fraction must lie in"),
        (["--model", "nonsense"], "unknown model 'nonsense'"),
        (["--lr", "0"], "--lr must be positive"),
    ],
)
def test_train_bad_arguments_exit_2_with_one_line(mini_cifar, tmp_path, capsys, extra, message):
    args = ["train", "--data", str(mini_cifar), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(args + ["--epochs", "1"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_train_missing_data_exits_2(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "data path not found" in capsys.readouterr().err


def test_train_help_lists_every_option_with_default(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--model", "--data", "--epochs", "--batch-size", "--lr", "--lr-step", "--out"):
        assert option in text
    assert "(default: 50)" in text and "(default: resnet8)" in text and "(default: 0.125)" in text


def _train_args(data, out):
    return ["train", "--model", "vgg_tiny", "--data", str(data), "--out", str(out)] + [
        "--batch-size",
        "32",
        "--quiet",
    ]


def test_train_is_keyed_by_its_settings_refuses_others_and_overwrite_starts_afresh(
    mini_cifar, tmp_path, capsys
):
    out = tmp_path / "run"
    args = _train_args(mini_cifar, out)
    assert main(args + ["--epochs", "1"]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "train" and manifest["status"] == "finished"
    assert {"best.pt", "last.pt", "result.json", "weights.pt"} <= set(manifest["files"])
    assert manifest["info"]["epochs"] == 1
    first = {n: (out / n).read_bytes() for n in ("result.json", "last.pt", "weights.pt")}

    # other settings: refused with one line, before any training, nothing changed
    for extra, differ in (
        (["--lr", "0.01"], "lr"),
        (["--train-subset", "40"], "train_data, train_subset"),
        (["--no-augment"], "augment"),
    ):
        assert main(args + ["--epochs", "2"] + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"pathwaygrad: error: {out} holds a finished `train` run with other settings ({differ} "
            "differ); pass --overwrite to replace it or choose another --out"
        )
    # fewer epochs than the run already has
    assert main(args + ["--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already trained for 1 epochs, more than --epochs 0" in err
    assert len(err.splitlines()) == 1
    # the same path holding other data is other settings too (the data's content is the key)
    for f in mini_cifar.iterdir():
        if f.name == "data_batch_1":
            with open(f, "rb") as fh:
                entry = pickle.load(fh)
            entry[b"data"] = 255 - entry[b"data"]
            with open(f, "wb") as fh:
                pickle.dump(entry, fh)
    assert main(args + ["--epochs", "1"]) == 2
    assert "train_data differ" in capsys.readouterr().err
    assert {n: (out / n).read_bytes() for n in first} == first

    # --overwrite: a fresh run with the new settings; result.json tells the real settings
    assert main(args + ["--epochs", "1", "--lr", "0.01", "--overwrite"]) == 0
    assert "resumed" not in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["resumed_from"] == 0 and result["settings"]["lr"] == 0.01
    assert [h["lr"] for h in result["history"]] == [0.01]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["lr"] == 0.01 and len(manifest["attempts"]) == 1


def test_train_refuses_a_folder_of_no_run_and_an_unusable_out_before_any_work(
    mini_cifar, tmp_path, capsys
):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "last.pt").write_bytes(b"an old checkpoint of unknown settings")
    assert main(_train_args(mini_cifar, legacy) + ["--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds files of no pathwaygrad run (last.pt)" in err and len(err.splitlines()) == 1
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    # checked before the data is read: the missing data is not what is reported
    assert main(_train_args(tmp_path / "nowhere", afile) + ["--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"pathwaygrad: error: --out {afile} is an existing file, not a folder: choose a folder"
    )


@pytest.mark.slow  # the library-level test (tests/test_training.py) covers this in 1 s
def test_train_crafted_checkpoint_in_a_run_folder_runs_no_code(mini_cifar, tmp_path, capsys):
    out = tmp_path / "run"
    args = _train_args(mini_cifar, out) + ["--epochs", "1", "--val-fraction", "0"]
    assert main(args) == 0
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('code ran')",))

    ckpt = torch.load(out / "last.pt", weights_only=True)
    ckpt["history"].append(Payload())
    torch.save(ckpt, out / "last.pt")
    capsys.readouterr()
    assert main(args[:-4] + ["--epochs", "2", "--val-fraction", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "last.pt holds objects other than tensors" in err and len(err.splitlines()) == 1
    assert not marker.exists()

from __future__ import annotations

import pytest
import torch

from .synthetic import cnn, make_data, mlp, train


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """These tests run tiny models: one intra-op thread is much faster than two, and on a busy
    machine two threads can be 20x slower. Restored after the package's tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def region_data():
    return make_data(640, seed=1), make_data(200, seed=2)


@pytest.fixture(scope="package")
def trained_mlp(region_data):
    torch.manual_seed(0)
    return train(mlp(), region_data[0])


@pytest.fixture(scope="package")
def trained_cnn(region_data):
    torch.manual_seed(0)
    return train(cnn(), region_data[0], epochs=15)

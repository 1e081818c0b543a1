from __future__ import annotations

import pytest
import torch

from .synthetic import cnn, make_data, mlp, train


@pytest.fixture(scope="session")
def region_data():
    return make_data(640, seed=1), make_data(200, seed=2)


@pytest.fixture(scope="session")
def trained_mlp(region_data):
    torch.manual_seed(0)
    return train(mlp(), region_data[0])


@pytest.fixture(scope="session")
def trained_cnn(region_data):
    torch.manual_seed(0)
    return train(cnn(), region_data[0], epochs=15)

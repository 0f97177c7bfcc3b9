import os

import kfcli  # noqa: F401  (a short OpenMP spin before torch loads: kfcli.limit_omp_spin)

# isort: split
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _seeded_global_rng():
    """Every test starts from the same global RNG state (network initialisations and priors
    trained without a generator), so a test's numbers do not depend on which tests ran
    before it or on the run."""
    torch.manual_seed(0)

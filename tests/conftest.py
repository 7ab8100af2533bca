"""Fixtures shared by the test files."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Tiny models run as fast on one thread as on two, and much faster on a CPU shared with other jobs
    (OpenMP threads spinning on busy cores). Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

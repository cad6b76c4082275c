"""Fixtures for the compiled-core tests: every test leaves kernels and threads as it found them."""
import numpy as np
import pytest

from minidl import _core

from core_helpers import TEST_THREADS


@pytest.fixture(autouse=True)
def restore_core_state():
    kernels, threads = _core.kernel_name(), _core.get_num_threads()
    yield
    _core.use_kernels(kernels)
    _core.set_num_threads(threads)
    _core._kernels._set_test_fork_join(None)


@pytest.fixture(params=_core.available_kernels())
def kernels(request):
    """Run the test once per kernel build this CPU can execute ('avx2', 'generic')."""
    _core.use_kernels(request.param)
    return request.param


@pytest.fixture(params=TEST_THREADS, ids=[f"{n}thread{'s' if n > 1 else ''}" for n in TEST_THREADS])
def threads(request):
    _core.set_num_threads(request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20100513)

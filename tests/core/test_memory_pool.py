"""The caching allocator for NumPy array data (csrc/memory_pool.c, `_core.memory_pool()`)."""
import multiprocessing
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl
from minidl import _core, nn, optim

from core_helpers import run_python

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:                     # NumPy 1.26
    from numpy.core.multiarray import get_handler_name

POOL = "minidl_memory_pool"
MIN_POOLED = 64 << 10                   # memory_pool.c: MDL_POOL_MIN_BYTES


@pytest.fixture(autouse=True)
def empty_pool():
    """Every test starts and ends with no kept blocks and the default cap."""
    cap = _core.memory_pool_stats()["cap_bytes"]
    _core.release_memory_pool()
    yield
    _core.set_memory_pool_cap(cap)
    _core.release_memory_pool()


def pooled_empty(nbytes, dtype=np.uint8):
    with _core.memory_pool():
        return np.empty(nbytes // np.dtype(dtype).itemsize, dtype=dtype)


def test_arrays_made_inside_use_the_pool_and_keep_it_outside():
    outside = np.empty(10)
    with _core.memory_pool():
        assert get_handler_name() == POOL
        inside = np.ones((256, 1000), np.float32)
        small = np.ones(3)
    assert get_handler_name() == get_handler_name(outside) != POOL
    assert get_handler_name(inside) == get_handler_name(small) == POOL
    assert inside.sum() == 256_000 and small.sum() == 3


def test_nested_and_raising_blocks_restore_the_previous_handler():
    default = get_handler_name()
    with _core.memory_pool():
        with _core.memory_pool():
            assert get_handler_name() == POOL
        assert get_handler_name() == POOL
    assert get_handler_name() == default
    with pytest.raises(KeyError):
        with _core.memory_pool():
            raise KeyError("boom")
    assert get_handler_name() == default


def test_blocks_that_end_out_of_order_still_restore_the_default():
    """Two generators each inside a pool, closed in the order they were opened: the second exit restored
    the pool handler saved at its entry, so every later array silently came from the pool."""
    default = get_handler_name()

    def batches():
        with _core.memory_pool():
            yield 1
            yield 2
    first, second = batches(), batches()
    next(first), next(second)
    first.close()
    assert get_handler_name() == POOL            # the second block is still open
    second.close()
    assert get_handler_name() == default
    outer, inner = _core.memory_pool(), _core.memory_pool()
    outer.__enter__(), inner.__enter__()
    outer.__exit__(None, None, None), inner.__exit__(None, None, None)
    assert get_handler_name() == default


def test_a_block_left_in_another_thread_changes_nothing_there():
    """A generator holding a pool block closed on another thread: its exit passed None to NumPy there
    (ValueError: Capsule must be named 'mem_handler')."""
    errors, names = [], []
    default = get_handler_name()
    pool = _core.memory_pool()
    pool.__enter__()

    def leave():
        try:
            pool.__exit__(None, None, None)
        except Exception as error:          # noqa: BLE001 - the test reports any
            errors.append(error)
        names.append(get_handler_name())
        names.append(int(np.ones(1 << 20, np.uint8).sum()))

    worker = threading.Thread(target=leave)
    worker.start()
    worker.join()
    assert errors == [] and names[0] != POOL and names[1] == 1 << 20
    assert get_handler_name() == POOL        # the entering thread keeps it (another context's variable)
    with _core.memory_pool():                # until the next block here ends
        pass
    assert get_handler_name() == default


def test_an_instance_is_entered_once():
    pool = _core.memory_pool()
    with pool:
        pass
    with pytest.raises(RuntimeError, match="once"):
        with pool:
            pass


def test_a_freed_block_serves_the_next_array_of_its_size():
    a = pooled_empty(1 << 20)
    address = a.ctypes.data
    before = _core.memory_pool_stats()
    del a
    kept = _core.memory_pool_stats()
    assert kept["cached_bytes"] == before["cached_bytes"] + (1 << 20)
    b = pooled_empty(1 << 20)
    after = _core.memory_pool_stats()
    assert b.ctypes.data == address
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    assert after["cached_bytes"] == before["cached_bytes"]


def test_data_is_64_byte_aligned_small_and_large():
    for nbytes in (8, 100, MIN_POOLED - 8, MIN_POOLED, 3 << 20):
        assert pooled_empty(nbytes).ctypes.data % 64 == 0


HUGE = _core.memory_pool_stats()["huge_page_bytes"]
needs_huge_pages = pytest.mark.skipif(HUGE == 0, reason="no transparent huge pages here (Linux THP mode never, "
                                                        "or no /sys/kernel/mm/transparent_hugepage)")


def vm_flags_of(address):
    """The VmFlags of the mapping that holds `address` (/proc/self/smaps); 'hg' marks MADV_HUGEPAGE."""
    start = end = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                start, end = (int(part, 16) for part in first.split("-"))
            elif first == "VmFlags:" and start <= address < end:
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@needs_huge_pages
def test_a_block_of_a_huge_page_or_more_starts_on_one_and_is_advised():
    for nbytes in (HUGE, 3 * HUGE + 12345):
        a = pooled_empty(nbytes)
        header = a.ctypes.data - 64                     # memory_pool.c: the block's header comes first
        assert header % HUGE == 0, (nbytes, hex(a.ctypes.data))
        assert "hg" in vm_flags_of(a.ctypes.data)


@needs_huge_pages
def test_a_huge_block_is_padded_to_whole_huge_pages_only_when_that_adds_at_most_a_quarter():
    near = pooled_empty(2 * HUGE - HUGE // 8)           # padding adds HUGE/8 (+64 header): padded
    address = near.ctypes.data
    del near
    reuse = pooled_empty(2 * HUGE - 4096)                # fits only the padded block
    assert reuse.ctypes.data == address
    del reuse
    _core.release_memory_pool()
    far = pooled_empty(HUGE + HUGE // 2)                 # padding would add a third: not padded
    address = far.ctypes.data
    del far
    misses = _core.memory_pool_stats()["misses"]
    bigger = pooled_empty(HUGE + HUGE // 2 + 8192)
    assert bigger.ctypes.data != address and _core.memory_pool_stats()["misses"] == misses + 1


def test_minidl_huge_pages_0_turns_them_off():
    code = "from minidl import _core; print(_core.memory_pool_stats()['huge_page_bytes'])"
    assert run_python(code, MINIDL_HUGE_PAGES="0") == "0"
    assert run_python(code) == str(HUGE)


def test_a_linear_weight_comes_from_the_pool():
    layer = nn.Linear(1000, 1000)
    assert get_handler_name(layer.weight.data) == POOL
    assert get_handler_name(layer.bias.data) != POOL        # small: NumPy's own
    if HUGE:
        assert (layer.weight.data.ctypes.data - 64) % HUGE == 0


def test_small_blocks_are_not_kept():
    a = pooled_empty(MIN_POOLED // 2)
    del a
    assert _core.memory_pool_stats()["cached_bytes"] == 0


def test_a_much_larger_block_is_not_spent_on_a_small_request():
    big = pooled_empty(4 << 20)
    big_address = big.ctypes.data
    del big
    misses = _core.memory_pool_stats()["misses"]
    small = pooled_empty(1 << 20)             # would waste 3/4 of the kept block: a fresh one
    assert small.ctypes.data != big_address
    assert _core.memory_pool_stats()["misses"] == misses + 1
    slightly_smaller = pooled_empty((4 << 20) - 4096 * 10)
    assert slightly_smaller.ctypes.data == big_address


def test_zeros_from_a_reused_block_are_zero():
    dirty = pooled_empty(1 << 20)
    dirty[:] = 0xAB
    del dirty
    with _core.memory_pool():
        z = np.zeros(1 << 20, dtype=np.uint8)
    assert _core.memory_pool_stats()["hits"] >= 1
    assert not z.any()


@pytest.mark.parametrize("new_size", [10, MIN_POOLED - 1, 300_000, 600_000, 5_000_000])
def test_resize_keeps_the_contents(new_size):
    with _core.memory_pool():
        a = np.arange(400_000, dtype=np.float64) // 7 % 251
        expected = a.copy()
        a.resize(new_size, refcheck=False)
    keep = min(new_size, expected.size)
    np.testing.assert_array_equal(a[:keep], expected[:keep])
    assert not a[keep:].any()                 # NumPy zero-fills what resize adds


def test_the_cap_bounds_the_kept_bytes_oldest_first():
    _core.set_memory_pool_cap(3 << 20)
    arrays = [pooled_empty(1 << 20) for _ in range(5)]
    addresses = [a.ctypes.data for a in arrays]
    evictions = _core.memory_pool_stats()["evictions"]
    for i in range(5):
        arrays[i] = None                      # freed first to last
    stats = _core.memory_pool_stats()
    assert stats["cached_bytes"] == 3 << 20
    assert stats["evictions"] == evictions + 2
    reused = [pooled_empty(1 << 20) for _ in range(3)]
    assert {a.ctypes.data for a in reused} == set(addresses[2:])   # the two oldest went back to the system
    _core.set_memory_pool_cap(0)
    assert _core.memory_pool_stats()["cached_bytes"] == 0
    del reused
    a = pooled_empty(1 << 20)
    del a
    assert _core.memory_pool_stats()["cached_bytes"] == 0


def test_a_block_larger_than_the_cap_is_freed():
    _core.set_memory_pool_cap(1 << 20)
    a = pooled_empty(2 << 20)
    del a
    assert _core.memory_pool_stats()["cached_bytes"] == 0


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("1", TypeError)])
def test_bad_caps_are_refused(bad, error):
    with pytest.raises(error):
        _core.set_memory_pool_cap(bad)


def test_a_cap_beyond_the_address_space_means_no_cap():
    """2**70 raised Cython's OverflowError (not naming the function); now it keeps everything, as SIZE_MAX does."""
    _core.set_memory_pool_cap(2**70)
    assert _core.memory_pool_stats()["cap_bytes"] == np.iinfo(np.uintp).max


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3 << 20)), min_size=1, max_size=40))
def test_no_block_is_handed_out_twice(ops):
    """Random allocations and frees: every live array keeps the pattern written into it."""
    live = []
    for index, (allocate, nbytes) in enumerate(ops):
        if allocate or not live:
            a = pooled_empty(nbytes)
            a[:] = index % 251
            live.append((a, index % 251))
        else:
            live.pop(nbytes % len(live))
        for array, value in live:
            assert array[0] == value and array[-1] == value and array[array.size // 2] == value


def test_threads_allocate_and_free_concurrently():
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200):
                with _core.memory_pool():
                    arrays = [np.full(int(n), seed, dtype=np.uint8) for n in rng.integers(1, 2 << 20, 4)]
                for a in arrays:
                    if not (a == seed).all():
                        errors.append(seed)
        except Exception as exc:            # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_an_array_from_another_thread_can_be_freed_here():
    made = []
    t = threading.Thread(target=lambda: made.append(pooled_empty(1 << 20)))
    t.start()
    t.join()
    kept = _core.memory_pool_stats()["cached_bytes"]
    made.clear()
    assert _core.memory_pool_stats()["cached_bytes"] == kept + (1 << 20)


def _child_allocates(queue):
    with _core.memory_pool():
        a = np.full(1 << 20, 3, dtype=np.uint8)
    queue.put(int(a.sum()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork() start method: Linux")
def test_a_forked_child_uses_the_pool():
    kept = pooled_empty(1 << 20)
    del kept                                  # the child inherits a kept block
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_allocates, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 3 << 20


def test_minidl_memory_pool_0_turns_it_off():
    code = ("import numpy as np; from minidl import _core\n"
            "try:\n    from numpy._core.multiarray import get_handler_name\n"
            "except ImportError:\n    from numpy.core.multiarray import get_handler_name\n"
            "with _core.memory_pool():\n    print(get_handler_name())")
    assert run_python(code, MINIDL_MEMORY_POOL="0") != POOL
    assert run_python(code) == POOL                           # and on without it


def _mlp_step(model, opt, x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.data)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_stop_asking_for_fresh_blocks(optimizer):
    """After the first steps, every large array of a step (activations, gradients, the pending weight
    gradient's factors, Adam's materialized gradients) comes from the blocks the last step freed."""
    rng = np.random.default_rng(0)
    model = nn.MLP([64, 300, 300, 10], activation="sigmoid")
    opt = optim.SGD(model.parameters(), lr=0.1) if optimizer == "sgd" else optim.Adam(model.parameters())
    x = minidl.tensor(rng.standard_normal((128, 64)).astype(np.float32))
    y = minidl.tensor(rng.integers(0, 10, 128))
    for _ in range(3):
        _mlp_step(model, opt, x, y)
    before = _core.memory_pool_stats()
    for _ in range(10):
        _mlp_step(model, opt, x, y)
    after = _core.memory_pool_stats()
    assert after["misses"] == before["misses"]
    assert after["hits"] >= before["hits"] + 10 * 3       # at least the three hidden activations
    assert after["cached_bytes"] == before["cached_bytes"]  # no growth


def test_training_gives_the_same_numbers_with_and_without_the_pool(monkeypatch):
    from minidl._core import _kernels

    losses = {}
    for on in (True, False):
        monkeypatch.setattr(_kernels, "_POOL_ON", on)
        minidl.manual_seed(3)
        rng = np.random.default_rng(1)
        model = nn.MLP([32, 200, 10], activation="sigmoid")
        opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        x = minidl.tensor(rng.standard_normal((256, 32)).astype(np.float32))
        y = minidl.tensor(rng.integers(0, 10, 256))
        losses[on] = [_mlp_step(model, opt, x, y) for _ in range(5)]
    assert losses[True] == losses[False]


def test_module_outputs_and_gradients_come_from_the_pool():
    rng = np.random.default_rng(2)
    layer = nn.Linear(50, 400)
    x = minidl.tensor(rng.standard_normal((100, 50)).astype(np.float32), requires_grad=True)
    out = layer(x)
    assert get_handler_name(out.data) == POOL                 # forward: Module.__call__
    out.sum().backward()
    assert get_handler_name(x.grad) == POOL                   # backward: the engine
    assert get_handler_name(layer.weight.grad) == POOL        # a pending product materialized
    assert get_handler_name(np.empty(3)) != POOL              # and nothing leaks out


def test_an_allocation_the_system_refuses_is_a_memory_error():
    with _core.memory_pool():
        with pytest.raises(MemoryError):
            np.empty(1 << 60, dtype=np.uint8)
        with pytest.raises(MemoryError):
            np.zeros((1 << 40, 1 << 20), dtype=np.uint8)
        ok = np.ones(1 << 20, dtype=np.uint8)           # and the pool still works afterwards
    assert ok.sum() == 1 << 20

"""matmul against a float64 NumPy reference: awkward shapes, transposes, strides, out=, dtypes, threads."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _core

from core_helpers import TEST_THREADS

DTYPES = [np.float32, np.float64]
TRANSPOSES = list(itertools.product([False, True], repeat=2))


def assert_matmul_close(got, a, b, trans_a=False, trans_b=False):
    """Elementwise bound |C - C_ref| <= 2 k eps (|op(a)| @ |op(b)|): the standard GEMM error bound."""
    opa = (a.T if trans_a else a).astype(np.float64)
    opb = (b.T if trans_b else b).astype(np.float64)
    ref = opa @ opb
    assert got.shape == ref.shape
    assert got.dtype == a.dtype
    k = opa.shape[1]
    bound = 2 * max(k, 1) * np.finfo(a.dtype).eps * (np.abs(opa) @ np.abs(opb)) + np.finfo(a.dtype).tiny
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= bound), f"max error {err.max()} (bound {bound[err > bound].min()})"


def operands(rng, m, k, n, dtype, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


# Tiles of the kernels: MR 4/6/14, NR 4/8/16/32; B read in place up to 70 rows in whole tiles (68/66/70);
# MC and KC come from the caches (test_blocking.py runs these products with the smallest and largest blocks
# too).
AWKWARD = [
    (0, 0, 0), (0, 5, 3), (4, 0, 3), (4, 5, 0), (1, 1, 1), (1, 7, 1), (7, 1, 9), (1, 1, 33),
    (2, 3, 5), (13, 17, 19), (72, 73, 74), (1000, 1, 1000),
    (5, 9, 15), (6, 16, 16), (7, 17, 17), (3, 255, 31), (11, 256, 33), (13, 257, 47),
    (15, 40, 65), (16, 40, 64), (17, 40, 63), (95, 33, 7), (97, 31, 9), (143, 20, 15),
    (144, 20, 16), (145, 20, 17), (10, 784, 100), (63, 70, 33), (64, 300, 130), (65, 70, 31),
    (150, 513, 37), (13, 33, 31), (14, 20, 32), (15, 21, 33), (28, 40, 64), (29, 41, 65),
    (153, 30, 40), (154, 31, 97), (155, 29, 95), (66, 45, 33), (67, 44, 35), (68, 43, 31), (69, 42, 37),
    (70, 41, 29), (71, 40, 39),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,k,n", AWKWARD, ids=[f"{m}x{k}x{n}" for m, k, n in AWKWARD])
def test_awkward_shapes(kernels, threads, rng, m, k, n, dtype, trans_a, trans_b):
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    got = _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert_matmul_close(got, a, b, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(5, 7, 3073), (9, 600, 2100), (200, 300, 260)])
def test_blocks_beyond_nc_and_kc(kernels, rng, m, k, n, dtype):
    a, b = operands(rng, m, k, n, dtype, False, False)
    assert_matmul_close(_core.matmul(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_tile_width_and_height(kernels, rng, dtype):
    """1-33 columns (every edge width of the 32-, 16-, 8- and 4-column tiles, the edges of at most half a tile
    that run one B vector's FMAs among them) at every row count of a 14- or 6-row tile, in the skinny and the
    packed path: the product, alpha * product + beta * C, and nothing written past the n columns of out's rows."""
    k = 37
    for m in [*range(1, 16), 84, 85, 97]:
        for n in range(1, 34):
            a, b = operands(rng, m, k, n, dtype, False, False)
            c = rng.standard_normal((m, n)).astype(dtype)
            rows = np.full((m, n + 40), 7.0, dtype=dtype)
            out = rows[:, :n]
            assert _core.matmul(a, b, out=out) is out
            assert_matmul_close(out, a, b)
            out[...] = c
            _core.matmul(a, b, out=out, alpha=-2.0, beta=0.5)
            ref = -2.0 * (a.astype(np.float64) @ b) + 0.5 * c
            bound = 2 * (k + 2) * np.finfo(dtype).eps * (2.0 * (np.abs(a) @ np.abs(b)) + np.abs(c))
            assert np.all(np.abs(out - ref) <= bound), (m, n)
            assert np.all(rows[:, n:] == 7.0), (m, n)


def test_zero_inner_dimension_gives_zeros(kernels):
    out = np.full((3, 4), np.nan, dtype=np.float32)
    got = _core.matmul(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), out=out)
    assert got is out
    assert np.array_equal(out, np.zeros((3, 4), np.float32))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_strided_negative_and_fortran_views(kernels, threads, rng, dtype):
    base_a = rng.standard_normal((60, 90)).astype(dtype)
    base_b = rng.standard_normal((80, 70)).astype(dtype)
    views_a = {
        "slice": base_a[::2, ::3],                      # (30, 30)
        "reversed": base_a[:30, ::-1][:, :30],
        "fortran": np.asfortranarray(base_a[:30, :30]),
        "broadcast": np.broadcast_to(base_a[0, :30], (30, 30)),
    }
    views_b = {
        "slice": base_b[::2, ::2][:30, :31],           # (30, 31)
        "reversed": base_b[::-1, :31][:30],
        "fortran": np.asfortranarray(base_b[:30, :31]),
        "column": base_b[:30, :1],
    }
    for (na, a), (nb, b) in itertools.product(views_a.items(), views_b.items()):
        assert_matmul_close(_core.matmul(a, b), a, b)
        # The same memory read as a transpose.
        assert_matmul_close(_core.matmul(a.T, b, trans_a=True), a.T, b, trans_a=True)
        assert_matmul_close(_core.matmul(a, b.T, trans_b=True), a, b.T, trans_b=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_out_argument(kernels, rng, dtype):
    a, b = operands(rng, 20, 30, 40, dtype, False, False)
    out = np.full((20, 40), np.nan, dtype=dtype)  # garbage must be overwritten, not accumulated
    assert _core.matmul(a, b, out=out) is out
    assert_matmul_close(out, a, b)
    # Non-contiguous and Fortran-ordered outputs are filled correctly too.
    big = np.zeros((20, 80), dtype=dtype)
    _core.matmul(a, b, out=big[:, ::2])
    assert_matmul_close(big[:, ::2], a, b)
    assert np.all(big[:, 1::2] == 0)
    fortran = np.zeros((20, 40), dtype=dtype, order="F")
    _core.matmul(a, b, out=fortran)
    assert_matmul_close(fortran, a, b)
    reversed_rows = np.zeros((20, 40), dtype=dtype)[::-1]
    _core.matmul(a, b, out=reversed_rows)
    assert_matmul_close(reversed_rows, a, b)


def test_out_aliasing_an_input(kernels, rng):
    a = rng.standard_normal((33, 33)).astype(np.float32)
    b = rng.standard_normal((33, 33)).astype(np.float32)
    expected = a.astype(np.float64) @ b
    got = _core.matmul(a, b, out=a)  # overwrites its own input: computed via a temporary
    assert got is a
    np.testing.assert_allclose(a, expected, rtol=1e-4, atol=1e-4)


def test_byteswapped_and_misaligned_inputs(kernels, rng):
    a = rng.standard_normal((17, 23))
    b = rng.standard_normal((23, 19))
    swapped = a.astype(a.dtype.newbyteorder(">"))
    raw = np.zeros(23 * 19 * 8 + 1, dtype=np.uint8)[1:].view(np.float64).reshape(23, 19)
    raw[...] = b
    assert not raw.flags.aligned
    got = _core.matmul(swapped, raw)
    assert_matmul_close(got, a, b)


def test_generic_and_avx2_agree(rng):
    if len(_core.available_kernels()) < 2:
        pytest.skip("only the generic kernels exist on this machine")
    a, b = operands(rng, 77, 300, 91, np.float64, False, True)
    results = []
    for name in _core.available_kernels():
        _core.use_kernels(name)
        results.append(_core.matmul(a, b, trans_b=True))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 40), k=st.integers(0, 40), n=st.integers(0, 70),
    trans_a=st.booleans(), trans_b=st.booleans(),
    dtype=st.sampled_from(DTYPES), step=st.sampled_from([1, 2, -1]),
    fortran=st.booleans(), nthreads=st.sampled_from(TEST_THREADS),
    kernel=st.sampled_from(_core.available_kernels()), seed=st.integers(0, 2**31),
)
def test_random_shapes_and_layouts(m, k, n, trans_a, trans_b, dtype, step, fortran, nthreads, kernel, seed):
    _core.use_kernels(kernel)
    _core.set_num_threads(nthreads)
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    # Same values, other memory layouts: strided (or reversed) copies and Fortran order.
    a_view = np.repeat(a, abs(step), axis=1)[:, ::step] if step != 1 else a
    if step == -1:
        a_view = np.ascontiguousarray(a[:, ::-1])[:, ::-1]
    if fortran:
        b = np.asfortranarray(b)
    assert np.array_equal(a_view, a)
    got = _core.matmul(a_view, b, trans_a=trans_a, trans_b=trans_b)
    assert_matmul_close(got, a, b, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_few_rows_times_a_transposed_b(kernels, rng, dtype):
    """A @ B.T with few rows of A, read along both operands' rows (the AVX-512 and AVX2 builds take dot products
    there, with no packing, up to 32 and 16 rows: gemm_template.h): every row count to 34, across the tiles'
    edges (5 x 4 and 4 x 3, one vector of k), with alpha/beta, reversed and gapped rows; the same bits on 1 and
    2 threads (each element is one kernel's sum whatever the split)."""
    _core._kernels._set_test_fork_join(1e-12)          # two threads even for the smallest products
    for m, n, k in itertools.product(range(1, 35), (1, 3, 4, 9), (1, 7, 15, 16, 17, 100)):
        a, b = operands(rng, 2 * m, k, 2 * n, dtype, False, True)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        for a_view, b_view in ((a[:m], b[:n]), (a[::-2], b[::2])):
            results = []
            for threads in (1, 2):
                _core.set_num_threads(threads)
                results.append(_core.matmul(a_view, b_view, trans_b=True))
                out = _core.matmul(a_view, b_view, trans_b=True, out=c0.copy(), alpha=-0.5, beta=2.0)
                ref = -0.5 * (a_view.astype(np.float64) @ b_view.T.astype(np.float64)) + 2.0 * c0
                scale = np.abs(a_view.astype(np.float64)) @ np.abs(b_view.T.astype(np.float64)) + np.abs(c0)
                assert np.all(np.abs(out - ref) <= 4 * (k + 2) * np.finfo(dtype).eps * scale), (m, n, k)
            assert_matmul_close(results[0], a_view, b_view.T)
            np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "BT"])
def test_in_place_and_packed_paths_give_the_same_bits_within_one_k_block(kernels, threads, rng, dtype, trans_b):
    """Products that read B in place and the first row count that packs it run the same FMAs in the same
    order for every element (same micro-kernel) when K fits one block of each, so their common rows agree bit
    for bit (beta != 0: the epilogue's c = alpha acc + beta c too): at skinny_kc_m rows with K the skinny K
    block, at skinny_m rows with K the packed path's (a transposed B there only: fewer rows may take the dot
    products)."""
    blk = _core.gemm_blocking(np.dtype(dtype).name, threads=threads)
    m, n = blk["skinny_m"] + 1, 3 * blk["nr"] + 5
    few = [] if trans_b else [(blk["skinny_kc_m"], blk["skinny_kc"])]
    for s, k in few + [(blk["skinny_m"], blk["kc"] if blk["skinny_m"] > blk["skinny_kc_m"] else blk["skinny_kc"])]:
        a, b = operands(rng, m, k, n, dtype, False, trans_b)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        skinny = _core.matmul(a[:s], b, trans_b=trans_b, out=c0[:s].copy(), alpha=-0.75, beta=0.5)
        packed = _core.matmul(a, b, trans_b=trans_b, out=c0.copy(), alpha=-0.75, beta=0.5)
        np.testing.assert_array_equal(packed[:s], skinny, err_msg=f"{s} rows, K {k}")
        assert_matmul_close(_core.matmul(a, b, trans_b=trans_b), a, b, trans_b=trans_b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "BT"])
def test_each_path_sums_k_in_its_own_blocks(kernels, threads, rng, dtype, trans_b):
    """Products of at most skinny_kc_m rows that read B in place (row-major op(B)) sum K in blocks of
    skinny_kc, the others (more rows, whether B is read in place up to skinny_m rows or packed, or a
    transposed B packed panel by panel) in blocks of kc (blocking.c), cut evenly: K three more than a block
    is two halves. So each product is, bit for bit, its first half's product with the second half's added by
    a second call with beta 1 (the epilogue's c = acc + c, one rounding, as between K blocks). A transposed B
    is tried at skinny_m rows and more only: fewer may take the dot products, which sum K whole."""
    blk = _core.gemm_blocking(np.dtype(dtype).name, threads=threads)
    n = 3 * blk["nr"] + 5
    few = [] if trans_b else [(blk["skinny_kc_m"], blk["skinny_kc"]), (blk["skinny_kc_m"] + 1, blk["kc"])]
    for m, kc in few + [(blk["skinny_m"], blk["kc"]), (blk["skinny_m"] + 1, blk["kc"])]:
        k = kc + 3
        h = (k + 1) // 2
        a, b = operands(rng, m, k, n, dtype, False, trans_b)
        part = (lambda lo, hi: b[:, lo:hi]) if trans_b else (lambda lo, hi: b[lo:hi])
        halves = _core.matmul(a[:, :h], part(0, h), trans_b=trans_b)
        _core.matmul(a[:, h:], part(h, k), trans_b=trans_b, out=halves, beta=1.0)
        np.testing.assert_array_equal(_core.matmul(a, b, trans_b=trans_b), halves, err_msg=f"{m} rows, K {k}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_the_products_rows_choose_the_k_blocks_on_any_number_of_threads(kernels, rng, dtype):
    """A product a little taller than skinny_kc_m or skinny_m, one strip wide, is split by rows: on 2 to 16
    threads each share is short enough for the skinny path's K block (or to read B in place), yet sums over
    the K blocks the whole product does on one thread (README: a run gives the same numbers at any thread
    count)."""
    _core._kernels._set_test_fork_join(1e-12)                     # teams even for this small product
    blk = _core.gemm_blocking(np.dtype(dtype).name)
    for m in (blk["skinny_kc_m"] + blk["mr"], blk["skinny_m"] + blk["mr"]):
        k, n = 3 * blk["kc"] + 5, blk["nr"]
        a, b = operands(rng, m, k, n, dtype, False, False)
        results = []
        for threads in (1, 2, 3, 4, 16):
            _core.set_num_threads(threads)
            results.append(_core.matmul(a, b))
        for got in results[1:]:
            np.testing.assert_array_equal(got, results[0], err_msg=f"{m} rows")
        assert_matmul_close(results[0], a, b)

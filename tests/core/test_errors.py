"""Every bad input raises the documented ValueError/TypeError, naming the shapes, and never crashes."""
import os
import re

import numpy as np
import pytest

from minidl import _core

from core_helpers import PACKAGE_PARENT

F32 = np.float32


def arr(*shape, dtype=F32):
    return np.ones(shape, dtype=dtype)


@pytest.mark.parametrize("a,b,kwargs,error,words", [
    (arr(3), arr(3, 4), {}, ValueError, ["2-D", "(3,)"]),
    (arr(2, 3, 4), arr(4, 5), {}, ValueError, ["2-D", "(2, 3, 4)"]),
    (arr(3, 4), arr(5, 6), {}, ValueError, ["inner", "(3, 4)", "(5, 6)"]),
    (arr(3, 4), arr(3, 4), {"trans_b": False}, ValueError, ["inner", "(3, 4)"]),
    (arr(4, 3), arr(4, 5), {"trans_a": False}, ValueError, ["inner", "(4, 3)", "(4, 5)"]),
    (arr(3, 4), arr(6, 5), {"trans_b": True}, ValueError, ["trans_b=True", "(6, 5)"]),
    (arr(3, 4), arr(4, 5, dtype=np.float64), {}, TypeError, ["float32", "float64"]),
    (arr(3, 4, dtype=np.int64), arr(4, 5, dtype=np.int64), {}, TypeError, ["int64"]),
    (arr(3, 4, dtype=np.float16), arr(4, 5, dtype=np.float16), {}, TypeError, ["float16"]),
    (arr(3, 4, dtype=np.complex64), arr(4, 5, dtype=np.complex64), {}, TypeError, ["complex64"]),
    ([[1.0, 2.0]], arr(2, 1), {}, TypeError, ["ndarray", "list"]),
    (arr(3, 4), arr(4, 5), {"out": arr(3, 4)}, ValueError, ["out", "(3, 4)", "(3, 5)"]),
    (arr(3, 4), arr(4, 5), {"out": arr(3, 5, dtype=np.float64)}, TypeError, ["out", "float64"]),
    (arr(3, 4), arr(4, 5), {"out": [[0.0] * 5] * 3}, TypeError, ["out", "ndarray"]),
])
def test_matmul_rejects(a, b, kwargs, error, words):
    with pytest.raises(error) as info:
        _core.matmul(a, b, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_matmul_rejects_read_only_out():
    out = arr(3, 5)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.matmul(arr(3, 4), arr(4, 5), out=out)


@pytest.mark.parametrize("flag", ["trans_a", "trans_b"])
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, [], 0.0])
def test_matmul_transposes_must_be_bools(flag, value):
    """bool("no") is True: a non-bool flag transposed a square operand silently (PyTorch: bools only)."""
    with pytest.raises(TypeError, match=re.escape(f"{flag} must be a bool, got {value!r}")):
        _core.matmul(arr(3, 3), arr(3, 3), **{flag: value})


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_matmul_takes_python_and_numpy_bools(value):
    a = np.arange(9, dtype=F32).reshape(3, 3)
    expected = a.T @ a if value else a @ a
    np.testing.assert_array_equal(_core.matmul(a, a, trans_a=value), expected)


def test_matmul_transposes_are_keyword_only():
    with pytest.raises(TypeError):
        _core.matmul(arr(3, 4), arr(4, 5), True)


@pytest.mark.parametrize("call,error,words", [
    (lambda: _core.sigmoid_forward(arr(3, dtype=np.int32)), TypeError, ["int32"]),
    (lambda: _core.sigmoid_forward([1.0, 2.0]), TypeError, ["ndarray"]),
    (lambda: _core.sigmoid_forward(arr(3, 4), out=arr(4, 3)), ValueError, ["(4, 3)", "(3, 4)"]),
    (lambda: _core.sigmoid_forward(arr(3), out=arr(3, dtype=np.float64)), TypeError, ["float64"]),
    (lambda: _core.sigmoid_backward(arr(3, 4), arr(4, 3)), ValueError, ["(3, 4)", "(4, 3)"]),
    (lambda: _core.sigmoid_backward(arr(3), arr(3, dtype=np.float64)), TypeError, ["float32", "float64"]),
    (lambda: _core.sigmoid_backward(arr(3), arr(1)), ValueError, ["(3,)", "(1,)"]),
    (lambda: _core.sigmoid_backward(arr(2, 2), arr(2, 2), out=arr(4)), ValueError, ["(4,)", "(2, 2)"]),
    (lambda: _core.sigmoid_backward(arr(3, dtype=np.int8), arr(3, dtype=np.int8)), TypeError, ["int8"]),
])
def test_sigmoid_rejects(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("value,error", [(0, ValueError), (-2, ValueError), ("2", TypeError),
                                         (2.5, TypeError), (True, TypeError), (_core.MAX_THREADS + 1, ValueError),
                                         (10**5, ValueError)])
def test_set_num_threads_rejects(value, error):
    """A team of 100000 threads crashed GCC's OpenMP runtime (segfault in the next product)."""
    before = _core.get_num_threads()
    with pytest.raises(error):
        _core.set_num_threads(value)
    assert _core.get_num_threads() == before


def test_an_omp_num_threads_beyond_the_limit_is_clamped():
    import subprocess
    import sys
    code = "import minidl._core as c; print(c.get_num_threads())"
    env = {**os.environ, "OMP_NUM_THREADS": "100000"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PACKAGE_PARENT,
                         timeout=120)
    assert out.returncode == 0 and int(out.stdout) == _core.MAX_THREADS, out.stderr


def test_use_kernels_rejects_unknown_build():
    with pytest.raises(ValueError, match="available"):
        _core.use_kernels("sse9")

"""_core.byte_range: the memory an array can reach, as NumPy's byte_bounds (the engine logs in-place writes
with it: minidl.autograd), for any layout: views with negative, zero and large strides, empty and 0-d arrays."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _core

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:                             # NumPy < 2.0
    byte_bounds = np.byte_bounds


@st.composite
def views(draw):
    shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=4))
    base = np.arange(int(np.prod(shape)), dtype=draw(st.sampled_from([np.float32, np.float64, np.int8])))
    array = base.reshape(shape)
    for axis in range(array.ndim):
        start = draw(st.integers(-6, 6))
        step = draw(st.sampled_from([1, 2, 3, -1, -2]))
        index = [slice(None)] * array.ndim
        index[axis] = slice(start, None, step)
        array = array[tuple(index)]
    if array.ndim > 1 and draw(st.booleans()):
        array = array.transpose(draw(st.permutations(range(array.ndim))))
    if draw(st.booleans()):
        array = np.broadcast_to(array, (2,) + array.shape)     # a zero stride
    return array


@settings(max_examples=300, deadline=None)
@given(views())
def test_byte_range_is_numpys_byte_bounds(array):
    assert _core.byte_range(array) == byte_bounds(array)


def test_byte_range_of_a_zero_dim_array_and_a_non_array():
    a = np.array(2.5)
    assert _core.byte_range(a) == byte_bounds(a)
    with pytest.raises(TypeError):
        _core.byte_range([1.0, 2.0])
    with pytest.raises(TypeError):
        _core.byte_range(None)                   # read None's fields as an array's: garbage, could crash

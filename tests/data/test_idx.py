"""IDX reader/writer: round trips and every kind of damaged file (error names the file and the defect)."""
import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data import IDXFormatError, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(DTYPES), shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
       compressed=st.booleans(), seed=st.integers(0, 2**16))
def test_round_trip(tmp_path_factory, dtype, shape, compressed, seed):
    rng = np.random.default_rng(seed)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compressed else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == tuple(shape)
    np.testing.assert_array_equal(back, array)


def test_big_endian_on_disk(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.array([1, 258], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 2])


def test_standard_mnist_header_is_understood(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([7, 2, 1]))
    np.testing.assert_array_equal(read_idx(path), [7, 2, 1])


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_a_gzip_file_too_short_inside_names_its_unpacked_length_and_its_own(tmp_path, content):
    """A 22-byte gzip of 2 bytes was "file is 2 bytes long"."""
    path = tmp_path / "short.idx.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(IDXFormatError, match=f"its gzip data \\(a {path.stat().st_size}-byte file\\) is "
                                             f"{len(content)} bytes long, shorter than the 4-byte magic number"):
        read_idx(path)
    path.write_bytes(content)
    with pytest.raises(IDXFormatError, match=f"file is {len(content)} bytes long, shorter than the 4-byte magic"):
        read_idx(path)


def _valid_bytes():
    return b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6))


CORRUPTIONS = {
    "empty": (b"", "shorter than the 4-byte magic"),
    "bad magic": (b"\x01\x00" + _valid_bytes()[2:], "bad magic number"),
    "bad dtype code": (b"\x00\x00\x07\x02" + _valid_bytes()[4:], "unknown dtype code 0x07"),
    "zero dimensions": (b"\x00\x00\x08\x00", "0 dimensions"),
    "truncated header": (_valid_bytes()[:9], "truncated header"),
    "truncated payload": (_valid_bytes()[:-1], "truncated"),
    "trailing bytes": (_valid_bytes() + b"\x00\x00", "wrong length: 2 bytes follow"),
    "huge declared size": (b"\x00\x00\x0e\x02" + struct.pack(">II", 2**32 - 1, 2**32 - 1), "truncated"),
    # NumPy's limit, 64 dimensions: the bare "maximum supported dimension for an ndarray" named no file
    "too many dimensions": (b"\x00\x00\x08\x41" + struct.pack(">65I", *[1] * 65) + b"\x07",
                            "declares 65 dimensions, 1x1x1"),
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_file_error_names_file_and_problem(tmp_path, name, compressed):
    content, problem = CORRUPTIONS[name]
    path = tmp_path / f"damaged-{name.replace(' ', '_')}.idx"
    if compressed:
        content = gzip.compress(content)
    path.write_bytes(content)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)
    assert isinstance(info.value, ValueError)


def test_valid_bytes_fixture_is_valid(tmp_path):
    path = tmp_path / "ok.idx"
    path.write_bytes(_valid_bytes())
    np.testing.assert_array_equal(read_idx(path), np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize("damage", ["truncated stream", "flipped bytes", "bad crc"])
def test_corrupt_gzip_stream(tmp_path, damage):
    payload = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)
    packed = bytearray(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 5000) + payload.tobytes()))
    if damage == "truncated stream":
        packed = packed[: len(packed) // 2]
    elif damage == "flipped bytes":
        for i in range(20, 60):
            packed[i] ^= 0xFF
    else:
        packed[-8] ^= 0xFF  # CRC32 in the trailer
    path = tmp_path / "broken.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(IDXFormatError, match="corrupt or truncated gzip|truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


def test_a_long_tail_after_the_data_is_not_counted_to_its_end(tmp_path):
    """A 2 MB gzip that inflates to 2 GiB of trailing zeros took seconds to reject: every byte was counted."""
    path = tmp_path / "padded-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_valid_bytes() + bytes(9 << 20), compresslevel=1))
    with pytest.raises(IDXFormatError, match="wrong length: more than 1048576 bytes follow the 6 bytes"):
        read_idx(path)
    path.write_bytes(gzip.compress(_valid_bytes() + bytes(1000)))
    with pytest.raises(IDXFormatError, match="wrong length: 1000 bytes follow"):
        read_idx(path)


@pytest.mark.parametrize("name", ["labels-idx1-ubyte", "labels-idx1-ubyte.gz"])
def test_an_interrupted_write_leaves_the_previous_file(tmp_path, monkeypatch, name):
    """write_idx opened the target itself: a process killed mid-write left a good file empty or torn."""
    path = tmp_path / name
    write_idx(path, np.arange(10, dtype=np.uint8))
    before = path.read_bytes()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed)            # killed before the data reached the disk
    monkeypatch.setattr(gzip.GzipFile, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        write_idx(path, np.arange(20, dtype=np.uint8))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [name]


def test_a_header_within_the_file_bound_but_beyond_memory_names_the_file(tmp_path, monkeypatch):
    """np.empty's MemoryError came out as a NumPy traceback naming no file."""
    path = write_idx(tmp_path / "images-idx3-ubyte", np.zeros((2, 3, 4), dtype=np.uint8))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "empty", no_memory)
    with pytest.raises(IDXFormatError, match=r"images-idx3-ubyte.*2x3x4 u1 values = 24 bytes of data, more than "
                                             r"this machine's free memory"):
        read_idx(path)


def test_a_bytes_path_is_a_path(tmp_path):
    """Path(b"...") raised "argument should be a str object or an os.PathLike object returning str"; open() and
    np.load take a bytes path."""
    path = os.fsencode(tmp_path / "a.idx.gz")
    write_idx(path, np.arange(4, dtype=np.int16))
    np.testing.assert_array_equal(read_idx(path), np.arange(4))


def test_a_dimension_longer_than_4_bytes_can_count_is_refused_by_name(tmp_path):
    """struct.error "'I' format requires 0 <= number <= 4294967295" came from inside the header packing."""
    long = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (2**32,), (0,))   # 4 GiB, one byte of memory
    with pytest.raises(ValueError, match=r"at most 4,294,967,295\), got shape \(4294967296,\)"):
        write_idx(tmp_path / "long.idx", long)
    assert not os.listdir(tmp_path)

"""The IDX file format of MNIST and Fashion-MNIST, read and written with full validation.

Layout (Y. LeCun, http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"):

    bytes 0-1   two zero bytes
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4 * d       the dimension sizes, big-endian uint32
    rest        the values, big-endian, C order; exactly prod(sizes) of them

Files may be gzip-compressed (recognised by their content, not their name). Every defect — a bad magic
number, an unknown dtype code, a header or payload that is too short or too long, a corrupt gzip stream —
raises `IDXFormatError` (a ValueError) naming the file and the problem.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from minidl.serialization import write_atomically

__all__ = ["IDXFormatError", "read_idx", "write_idx", "IDX_DTYPES"]

#: IDX dtype code -> NumPy dtype (big-endian as stored on disk).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22


class IDXFormatError(ValueError):
    """An IDX file is malformed; the message names the file and what is wrong."""


def _fail(path: Path, problem: str) -> IDXFormatError:
    return IDXFormatError(f"{path}: not a valid IDX file: {problem}")


def _read_exactly(stream, size: int) -> bytes:
    """Read `size` bytes, fewer only at end of stream."""
    parts, remaining = [], size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _readinto_exactly(stream, buffer: memoryview) -> int:
    """Fill `buffer` from the stream; return how many bytes were read (fewer only at end of stream)."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled : filled + _CHUNK])
        if not count:
            break
        filled += count
    return filled


_COUNTED_AT_MOST = 1 << 20      # extra bytes counted before a damaged file is called so (a gzip of 2 MB can
                                # inflate to 2 GiB of trailing zeros: counting them all took seconds)


def _count_remaining(stream) -> int:
    """The bytes left in ``stream``, counted up to just past ``_COUNTED_AT_MOST``."""
    total = 0
    while total <= _COUNTED_AT_MOST:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return total
        total += len(chunk)
    return total


def _parse_header(path: Path, stream, content: str = "file") -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, header length in bytes) after validating the magic number; `content` names what
    `stream` reads in messages (the file, or what its gzip stream unpacks to)."""
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise _fail(path, f"{content} is {len(magic)} bytes long, shorter than the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise _fail(path, f"bad magic number 0x{magic.hex()}: the first two bytes must be zero")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise _fail(path, f"unknown dtype code 0x{code:02X} (known codes: {known})")
    if ndim == 0:
        raise _fail(path, "the header declares 0 dimensions")
    raw_dims = _read_exactly(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise _fail(path, f"truncated header: {ndim} dimension sizes need {4 * ndim} bytes, "
                          f"only {len(raw_dims)} present")
    shape = struct.unpack(f">{ndim}I", raw_dims)
    return IDX_DTYPES[code], tuple(int(s) for s in shape), 4 + 4 * ndim


# Deflate cannot compress better than about 1032:1, so a gzip file of c bytes holds at most this much.
_DEFLATE_MAX_RATIO = 1032


def _to_native(values: np.ndarray) -> np.ndarray:
    """Big-endian values from disk -> native byte order, in place (no second copy of the payload)."""
    if values.dtype.itemsize > 1 and not values.dtype.isnative:
        values.byteswap(inplace=True)
    return values.view(values.dtype.newbyteorder("="))


def _read_payload(path: Path, stream, dtype: np.dtype, shape: tuple[int, ...], max_bytes: int,
                  container: str) -> np.ndarray:
    """Read exactly prod(shape) values; `max_bytes` bounds what the file can hold (checked before allocating)."""
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    shape_text = "x".join(map(str, shape))
    if declared > max_bytes:
        raise _fail(path, f"truncated: header declares {shape_text} {dtype.str[1:]} values = {declared} bytes "
                          f"of data, more than {container} can hold ({max_bytes} bytes at most)")
    try:
        values = np.empty(shape, dtype=dtype)
    except ValueError as error:     # more dimensions than NumPy allows (64; 32 before NumPy 2), sizes too large
        raise _fail(path, f"the header declares {len(shape)} dimensions, {shape_text} {dtype.str[1:]} values, "
                          f"an array NumPy cannot make ({error})") from None
    except MemoryError:             # within what the file can hold, but not in this machine's memory
        raise _fail(path, f"the header declares {shape_text} {dtype.str[1:]} values = {declared:,} bytes of data, "
                          f"more than this machine's free memory") from None
    filled = _readinto_exactly(stream, memoryview(values.reshape(-1)).cast("B"))
    if filled < declared:
        raise _fail(path, f"truncated: header declares {shape_text} {dtype.str[1:]} values = {declared} bytes "
                          f"of data, only {filled} present")
    extra = _count_remaining(stream)
    if extra:
        counted = f"{extra} bytes" if extra <= _COUNTED_AT_MOST else f"more than {_COUNTED_AT_MOST} bytes"
        raise _fail(path, f"wrong length: {counted} follow the {declared} bytes of data that the header "
                          f"({shape_text} {dtype.str[1:]}) declares")
    return _to_native(values)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-endian ndarray of the declared shape and dtype.

    Raises FileNotFoundError if `path` does not exist and IDXFormatError (a ValueError) naming the file and
    the defect for a bad magic number, unknown dtype code, truncated header or payload, trailing bytes, or a
    corrupt gzip stream.
    """
    path = Path(os.fsdecode(path))            # bytes too, as open() takes them
    with open(path, "rb") as raw:
        file_size = os.fstat(raw.fileno()).st_size
        if raw.read(2) != _GZIP_MAGIC:
            raw.seek(0)
            dtype, shape, header_bytes = _parse_header(path, raw)
            return _read_payload(path, raw, dtype, shape, max_bytes=file_size - header_bytes,
                                 container=f"the rest of this {file_size}-byte file")
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                dtype, shape, _ = _parse_header(path, stream, content=f"its gzip data (a {file_size}-byte file)")
                return _read_payload(path, stream, dtype, shape, max_bytes=_DEFLATE_MAX_RATIO * file_size,
                                     container=f"a {file_size}-byte gzip file")
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise _fail(path, f"corrupt or truncated gzip data ({type(error).__name__}: {error})") from None


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write `array` as an IDX file; gzip-compressed when `path` ends in ``.gz``. Returns the path. Atomic
    (minidl.serialization.write_atomically): an interrupted write leaves the previous file as it was.

    The dtype must be one IDX can hold (uint8, int8, int16, int32, float32, float64), else TypeError.
    """
    path = Path(os.fsdecode(path))            # bytes too, as open() takes them
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(f"write_idx: IDX cannot store dtype {array.dtype} (allowed: uint8, int8, int16, "
                        f"int32, float32, float64)")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got shape {array.shape}")
    if max(array.shape) > 0xFFFFFFFF:
        raise ValueError(f"write_idx: IDX stores each dimension size in 4 bytes (at most {0xFFFFFFFF:,}), "
                         f"got shape {array.shape}")
    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[codes[native]]).tobytes()

    def write(file) -> None:
        out = gzip.GzipFile(filename=str(path), mode="wb", fileobj=file) if path.name.endswith(".gz") else file
        out.write(header)
        out.write(payload)
        if out is not file:
            out.close()                 # the gzip trailer; `file` itself stays open for write_atomically

    write_atomically(path, write)      # a killed write leaves the old file, never a torn one
    return path

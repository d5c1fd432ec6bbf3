"""Reader for the IDX format of MNIST, Fashion-MNIST, Kuzushiji-MNIST and EMNIST.

Header: two zero bytes, a type byte, a dimension count, then one big-endian
uint32 per dimension; the data follow in row-major order.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a NumPy array."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.suffix == ".gz" or data[:2] == b"\x1f\x8b":
            # One zlib call on the whole file is ~2x faster than reading through gzip.open.
            d = zlib.decompressobj(wbits=31)
            data = d.decompress(data)
            if not d.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
    except (OSError, EOFError, zlib.error) as e:  # a cut-off or damaged gzip stream
        raise DatasetError(f"{path} cannot be read as IDX ({e}); delete it and fetch it again") from e
    return parse_idx(data, str(path))


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; `name` is used in error messages."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DatasetError(f"{name} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{name} is truncated inside its header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{name} is truncated or corrupt: {len(data):,} bytes, expected {expected:,} "
            f"for shape {dims}; delete it and fetch it again"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))

"""Read TensorFlow V2 checkpoints with numpy alone, so the original ALBERT checkpoints load without TF.

A V2 checkpoint (a "tensor bundle") is ``PREFIX.index`` plus ``PREFIX.data-0000K-of-0000N``. The index is
a LevelDB-format table (an SSTable) that maps each tensor name to a ``BundleEntryProto`` saying where the
tensor's raw little-endian bytes sit in the data shards; the entry under the empty key is the
``BundleHeaderProto``. Both protos are decoded by hand here, which keeps TensorFlow and protobuf out of the
dependencies.

Tensor bytes are checked against the size the shape implies, but not against their stored crc32c:
a pure-Python crc32c runs at a few MB/s, too slow for a few hundred MB of weights. The (small) index
blocks are crc-checked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import ml_dtypes
import numpy as np

from albert_jax.errors import InputError

_TABLE_MAGIC = 0xDB4775248B80FB57
# Two block handles (metaindex, index) padded to 40 bytes, then the 8-byte magic number.
_FOOTER_LEN = 48
_NO_COMPRESSION, _SNAPPY_COMPRESSION = 0, 1
# The newest bundle format this reader understands (TensorFlow's kTensorBundleVersion).
_BUNDLE_VERSION = 1

# TensorFlow DataType enum -> numpy dtype, for the dtypes whose bytes are a plain array.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    8: np.dtype(np.complex64),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    14: np.dtype(ml_dtypes.bfloat16),
    17: np.dtype(np.uint16),
    18: np.dtype(np.complex128),
    19: np.dtype(np.float16),
    22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
}
# Reported by list_variables for tensors load_variables cannot read; numpy's dtype for TF strings.
_UNLOADABLE = np.dtype(object)
_DTYPE_NAMES = {7: "string", 20: "resource", 21: "variant"}

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STEP_SUFFIX = re.compile(r"-(\d+)$")
_STATE_PATH = re.compile(r'^\s*model_checkpoint_path:\s*"([^"]*)"', re.MULTILINE)


class _FormatError(Exception):
    """The index is malformed or uses a feature this reader lacks; re-raised as InputError naming the file."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    """Where one tensor lives in the data shards (a decoded BundleEntryProto)."""

    dtype_enum: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    sliced: bool


def find_checkpoint(path: str | os.PathLike[str]) -> str:
    """Return the checkpoint prefix that ``path`` names.

    ``path`` may be a prefix (``.../model.ckpt-best``), one of its files (``.index`` or ``.data-*``), or a
    directory. In a directory the ``checkpoint`` state file wins when it points at an existing checkpoint;
    otherwise the ``*-STEP.index`` with the highest step is chosen, else the only ``*.index`` there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _find_in_directory(path)
    if os.path.isfile(path + ".index"):
        return path
    prefix = _DATA_SUFFIX.sub("", path.removesuffix(".index"))
    if not os.path.isfile(prefix + ".index"):
        raise FileNotFoundError(f"no TensorFlow checkpoint at {path}: {prefix}.index does not exist")
    return prefix


def list_variables(prefix: str | os.PathLike[str]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Map every tensor name in the checkpoint to its (shape, dtype), in the checkpoint's (sorted) order.

    ``prefix`` is anything :func:`find_checkpoint` accepts. Tensors that :func:`load_variables` cannot
    read (strings such as TF2's ``_CHECKPOINTABLE_OBJECT_GRAPH``, variants) have dtype ``object``.
    """
    _, entries = _read_index(find_checkpoint(prefix))
    return {
        name: (entry.shape, _DTYPES.get(entry.dtype_enum, _UNLOADABLE))
        for name, entry in entries.items()
    }


def load_variables(
    prefix: str | os.PathLike[str], names: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Read tensors from the checkpoint into fresh numpy arrays, keyed by name in the order requested.

    ``prefix`` is anything :func:`find_checkpoint` accepts; ``names`` defaults to every tensor. Only the
    requested tensors' bytes are read from the data shards. Raises InputError, before reading any data,
    if a name is missing or a tensor cannot be loaded (string/variant dtype, partitioned variable).
    """
    if isinstance(names, str):
        raise TypeError("names must be a collection of tensor names, not a single string")
    prefix = find_checkpoint(prefix)
    num_shards, entries = _read_index(prefix)
    wanted = list(entries) if names is None else list(dict.fromkeys(names))
    missing = [name for name in wanted if name not in entries]
    if missing:
        raise InputError(f"checkpoint {prefix} has no tensor named {', '.join(map(repr, missing))}")
    for name in wanted:
        _check_loadable(prefix, name, entries[name])

    by_shard: dict[int, list[str]] = {}
    for name in wanted:
        by_shard.setdefault(entries[name].shard_id, []).append(name)
    arrays: dict[str, np.ndarray] = {}
    for shard_id, shard_names in sorted(by_shard.items()):
        data_path = f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"
        with open(data_path, "rb") as data_file:
            file_size = os.fstat(data_file.fileno()).st_size
            # Reading in file order keeps the access sequential on slow disks.
            for name in sorted(shard_names, key=lambda n: entries[n].offset):
                arrays[name] = _read_tensor(data_file, data_path, file_size, name, entries[name])
    return {name: arrays[name] for name in wanted}


def _find_in_directory(directory: str) -> str:
    state_path = os.path.join(directory, "checkpoint")
    if os.path.isfile(state_path):
        with open(state_path, encoding="utf-8") as state_file:
            match = _STATE_PATH.search(state_file.read())
        if match:
            recorded = match.group(1)
            # The state file may hold an absolute path from the machine that trained the model, so fall back
            # to the same name inside this directory.
            for candidate in (recorded, os.path.basename(recorded)):
                prefix = os.path.join(directory, candidate)
                if os.path.isfile(prefix + ".index"):
                    return prefix

    candidates = sorted(
        name.removesuffix(".index") for name in os.listdir(directory) if name.endswith(".index")
    )
    steps = [(int(match.group(1)), name) for name in candidates if (match := _STEP_SUFFIX.search(name))]
    if steps:
        return os.path.join(directory, max(steps)[1])
    if len(candidates) == 1:
        return os.path.join(directory, candidates[0])
    if not candidates:
        raise FileNotFoundError(f"no TensorFlow checkpoint (*.index file) in directory {directory}")
    raise InputError(
        f"directory {directory} holds several checkpoints ({', '.join(candidates)}); pass the prefix of one"
    )


def _read_index(prefix: str) -> tuple[int, dict[str, _Entry]]:
    """Parse ``prefix.index`` into (number of data shards, tensor name -> entry)."""
    index_path = prefix + ".index"
    with open(index_path, "rb") as index_file:
        table = index_file.read()
    try:
        return _parse_index(table)
    except _FormatError as error:
        raise InputError(f"{index_path}: {error}") from None


def _parse_index(table: bytes) -> tuple[int, dict[str, _Entry]]:
    num_shards = None
    entries: dict[str, _Entry] = {}
    for key, value in _table_entries(table):
        if key == b"":
            num_shards = _parse_header(value)
        elif key.startswith(b"\x00"):
            # Each slice of a partitioned variable has an OrderedCode-encoded key (leading NUL byte);
            # the whole variable also has an ordinary entry, which is the one to list.
            continue
        else:
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise _FormatError(f"corrupt index: tensor name {key!r} is not UTF-8") from None
            entries[name] = _parse_entry(name, value)
    if num_shards is None:
        raise _FormatError("corrupt index: no bundle header entry")
    for name, entry in entries.items():
        if entry.shard_id >= num_shards:
            raise _FormatError(f"corrupt index: tensor {name!r} is in shard {entry.shard_id} of {num_shards}")
    return num_shards, entries


def _parse_header(value: bytes) -> int:
    """Decode the BundleHeaderProto and return its number of data shards."""
    header = _proto_fields(value)
    num_shards = _int(header, 1)
    if _int(header, 2) != 0:
        raise _FormatError("big-endian checkpoints are not supported")
    min_consumer = _int(_proto_fields(_message(header, 3)), 2)
    if min_consumer > _BUNDLE_VERSION:
        raise _FormatError(
            f"bundle format version {min_consumer} is newer than version {_BUNDLE_VERSION}, "
            "which this reader reads"
        )
    if num_shards < 1:
        raise _FormatError(f"corrupt index: header says {num_shards} data shards")
    return num_shards


def _parse_entry(name: str, value: bytes) -> _Entry:
    """Decode a BundleEntryProto (and the TensorShapeProto inside it)."""
    entry = _proto_fields(value)
    shape_proto = _proto_fields(_message(entry, 2))
    if _int(shape_proto, 3):
        raise _FormatError(f"corrupt index: tensor {name!r} has unknown rank")
    shape = tuple(_int(_proto_fields(dim), 1) for dim in _messages(shape_proto, 2))
    # Varints carry negative int64 as huge unsigned values; a real dimension is far below 2**63.
    if any(dim >= 1 << 63 for dim in shape):
        raise _FormatError(f"corrupt index: tensor {name!r} has an unknown dimension")
    return _Entry(
        dtype_enum=_int(entry, 1),
        shape=shape,
        shard_id=_int(entry, 3),
        offset=_int(entry, 4),
        size=_int(entry, 5),
        sliced=bool(_messages(entry, 7)),
    )


def _check_loadable(prefix: str, name: str, entry: _Entry) -> None:
    if entry.dtype_enum not in _DTYPES:
        dtype_name = _DTYPE_NAMES.get(entry.dtype_enum, f"enum {entry.dtype_enum}")
        raise InputError(
            f"tensor {name!r} in checkpoint {prefix} has TensorFlow dtype {dtype_name}, which this reader "
            "cannot load; pass `names` to load only the numeric tensors"
        )
    if entry.sliced:
        raise InputError(
            f"tensor {name!r} in checkpoint {prefix} is a partitioned variable saved as slices, which this "
            "reader does not support"
        )
    dtype = _DTYPES[entry.dtype_enum]
    expected = math.prod(entry.shape) * dtype.itemsize
    if entry.size != expected:
        raise InputError(
            f"{prefix}.index: corrupt index: tensor {name!r} has {entry.size} bytes, but shape {entry.shape} "
            f"of {dtype} needs {expected}"
        )


def _read_tensor(data_file: BinaryIO, data_path: str, file_size: int, name: str, entry: _Entry) -> np.ndarray:
    # Checked before allocating, so a corrupt index cannot make us allocate an absurd array.
    if entry.offset + entry.size > file_size:
        raise InputError(f"{data_path}: file ends inside tensor {name!r} (truncated checkpoint?)")
    array = np.empty(entry.shape, _DTYPES[entry.dtype_enum])
    data_file.seek(entry.offset)
    # A uint8 view gives readinto a plain byte buffer even for dtypes (bfloat16) that lack a buffer format.
    if data_file.readinto(array.reshape(-1).view(np.uint8)) != entry.size:
        raise InputError(f"{data_path}: file shrank while reading tensor {name!r}")
    return array


# --- LevelDB table format -------------------------------------------------------------------------------


def _table_entries(table: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield every (key, value) of an SSTable, in key order."""
    if len(table) < _FOOTER_LEN:
        raise _FormatError(f"file is {len(table)} bytes, too short for a checkpoint index (truncated?)")
    footer = table[-_FOOTER_LEN:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_LEN - 8)
    if magic != _TABLE_MAGIC:
        raise _FormatError("bad magic number: not a TensorFlow V2 checkpoint index, or truncated")
    # The metaindex block is empty in bundles: skip its handle.
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    for _, handle in _block_entries(_read_block(table, index_offset, index_size)):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        yield from _block_entries(_read_block(table, offset, size))


def _read_block(table: bytes, offset: int, size: int) -> bytes:
    """Return a block's contents after checking its trailer (compression type byte + masked crc32c)."""
    end = offset + size
    if end + 5 > len(table):
        raise _FormatError("a block runs past the end of the file (truncated?)")
    (stored_crc,) = struct.unpack_from("<I", table, end + 1)
    # The checksum covers the contents and the compression type byte.
    if _masked_crc32c(table[offset : end + 1]) != stored_crc:
        raise _FormatError(f"checksum mismatch in the block at byte {offset} (corrupt file)")
    compression = table[end]
    if compression == _SNAPPY_COMPRESSION:
        raise _FormatError(
            "the index is snappy-compressed; only uncompressed indexes (what TensorFlow writes) are supported"
        )
    if compression != _NO_COMPRESSION:
        raise _FormatError(f"unknown block compression type {compression}")
    return table[offset:end]


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield a block's (key, value) pairs, undoing the prefix compression of keys.

    Each entry stores how many leading bytes its key shares with the previous key; restart points (where
    sharing is reset to zero) only matter for seeking, so a full scan just needs to know where they start.
    """
    if len(block) < 4:
        raise _FormatError("corrupt index: block too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    entries_end = len(block) - 4 - 4 * num_restarts
    if entries_end < 0:
        raise _FormatError("corrupt index: bad restart count")
    block = block[:entries_end]
    key = b""
    pos = 0
    while pos < len(block):
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > len(block):
            raise _FormatError("corrupt index: bad block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), masked the way LevelDB stores checksums of data that may embed checksums."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protobuf wire format --------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, position after it)."""
    value = 0
    shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise _FormatError("corrupt index: truncated or overlong varint")


def _proto_fields(buf: bytes) -> dict[int, list[int | bytes]]:
    """Decode one protobuf message into field number -> values (bytes for length-delimited fields)."""
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        wire_type = tag & 7
        value: int | bytes
        if wire_type == 0:
            value, pos = _varint(buf, pos)
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            if pos + width > len(buf):
                raise _FormatError("corrupt index: truncated protobuf field")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        elif wire_type == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _FormatError("corrupt index: truncated protobuf field")
            value = buf[pos : pos + length]
            pos += length
        else:
            raise _FormatError(f"corrupt index: unsupported protobuf wire type {wire_type}")
        fields.setdefault(tag >> 3, []).append(value)
    return fields


def _int(fields: dict[int, list[int | bytes]], number: int) -> int:
    """A scalar integer field; protobuf says the last occurrence wins and absence means 0."""
    values = fields.get(number, [0])
    if not isinstance(values[-1], int):
        raise _FormatError(f"corrupt index: protobuf field {number} should be an integer")
    return values[-1]


def _messages(fields: dict[int, list[int | bytes]], number: int) -> list[bytes]:
    """A repeated message (or string) field, as the raw bytes of each occurrence."""
    values = fields.get(number, [])
    if not all(isinstance(value, bytes) for value in values):
        raise _FormatError(f"corrupt index: protobuf field {number} should be length-delimited")
    return values  # type: ignore[return-value]


def _message(fields: dict[int, list[int | bytes]], number: int) -> bytes:
    """A singular message field; absence decodes as the empty (all-defaults) message."""
    values = _messages(fields, number)
    return values[-1] if values else b""

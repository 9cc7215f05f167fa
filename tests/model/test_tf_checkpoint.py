"""The numpy-only TF checkpoint reader against checkpoints that TensorFlow itself writes and reads."""

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from albert_jax.errors import InputError
from albert_jax.model import tf_checkpoint as tfc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

# TensorFlow's tables cut a new data block every 256 KiB of entries.
TF_TABLE_BLOCK_SIZE = 256 * 1024


def _albert_like_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    group = "bert/encoder/transformer/group_0/inner_group_0"
    return {
        "bert/embeddings/word_embeddings": rng.standard_normal((30, 8), dtype=np.float32),
        "bert/embeddings/LayerNorm/gamma": rng.standard_normal(8, dtype=np.float32),
        f"{group}/attention_1/self/query/kernel": rng.standard_normal((8, 8), dtype=np.float32),
        f"{group}/attention_1/self/query/bias": rng.standard_normal(8, dtype=np.float32),
        "bert/pooler/dense/kernel": rng.standard_normal((4, 3)).astype(ml_dtypes.bfloat16),
        "cls/predictions/output_bias": rng.standard_normal(30).astype(np.float16),
        "global_step": np.array(123, dtype=np.int64),
        "loss_scale": np.array(0.5, dtype=np.float32),
        "extra/f64": rng.standard_normal(3),
        "extra/i32": rng.integers(-1000, 1000, (2, 2), dtype=np.int32),
        "extra/i8": rng.integers(-128, 127, 5, dtype=np.int8),
        "extra/u8": rng.integers(0, 255, 5, dtype=np.uint8),
        "extra/i16": rng.integers(-1000, 1000, 3, dtype=np.int16),
        "extra/u16": rng.integers(0, 60000, 3, dtype=np.uint16),
        "extra/u32": rng.integers(0, 2**32 - 1, 3, dtype=np.uint32),
        "extra/u64": rng.integers(0, 2**63, 3, dtype=np.uint64),
        "extra/c64": rng.standard_normal(2).astype(np.complex64) * 1j,
        "extra/c128": rng.standard_normal(2) * 1j,
        "extra/flags": np.array([True, False, True]),
        "extra/empty": np.zeros((0, 4), dtype=np.float32),
    }


def _save_with_saver(
    prefix: Path, values: dict[str, np.ndarray], devices: tuple[str, ...] = ("/cpu:0",), step: int = 123
) -> str:
    """Save as the original ALBERT code did: tf.compat.v1 variables (round-robin over devices), a Saver."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        for i, (name, value) in enumerate(values.items()):
            with tf.device(devices[i % len(devices)]):
                tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        saver = tf.compat.v1.train.Saver(sharded=len(devices) > 1)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": len(devices)})
        with tf.compat.v1.Session(graph=graph, config=config) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(prefix), global_step=step)


def _assert_matches_tensorflow(prefix: str) -> None:
    """Names, shapes, dtypes and exact bytes agree with what TensorFlow reads from the same checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    tf_dtypes = reader.get_variable_to_dtype_map()
    listed = tfc.list_variables(prefix)
    assert {name: list(shape) for name, (shape, _) in listed.items()} == dict(tf.train.list_variables(prefix))
    assert {name: dtype for name, (_, dtype) in listed.items()} == {
        name: np.dtype(dtype.as_numpy_dtype) for name, dtype in tf_dtypes.items()
    }
    loaded = tfc.load_variables(prefix)
    assert list(loaded) == list(listed)
    for name, array in loaded.items():
        expected = np.asarray(reader.get_tensor(name))
        assert (array.dtype, array.shape) == (expected.dtype, expected.shape), name
        assert array.tobytes() == expected.tobytes(), name


@pytest.fixture(scope="module")
def albert_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _save_with_saver(tmp_path_factory.mktemp("albert") / "model.ckpt", _albert_like_values())


def test_albert_like_checkpoint_matches_tensorflow(albert_checkpoint: str) -> None:
    _assert_matches_tensorflow(albert_checkpoint)
    loaded = tfc.load_variables(albert_checkpoint)
    for name, value in _albert_like_values().items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


def test_load_selected_names_in_requested_order(albert_checkpoint: str) -> None:
    names = ["global_step", "bert/pooler/dense/kernel"]
    loaded = tfc.load_variables(albert_checkpoint, names)
    assert list(loaded) == names
    assert loaded["global_step"].shape == () and loaded["global_step"] == 123
    assert loaded["bert/pooler/dense/kernel"].dtype == ml_dtypes.bfloat16
    loaded["global_step"][...] = 0  # fresh arrays, not read-only views of the file


def test_accepts_directory_and_file_paths(albert_checkpoint: str) -> None:
    directory = os.path.dirname(albert_checkpoint)
    assert tfc.find_checkpoint(directory) == albert_checkpoint
    assert tfc.find_checkpoint(albert_checkpoint + ".index") == albert_checkpoint
    assert tfc.find_checkpoint(albert_checkpoint + ".data-00000-of-00001") == albert_checkpoint
    assert list(tfc.load_variables(directory, ["global_step"])) == ["global_step"]


def test_missing_name_is_reported(albert_checkpoint: str) -> None:
    with pytest.raises(InputError, match="bert/no_such_variable"):
        tfc.load_variables(albert_checkpoint, ["global_step", "bert/no_such_variable"])


def test_index_spanning_several_blocks(tmp_path: Path) -> None:
    # Names differ early (layer index) and share long tails, so keys are prefix-compressed within each
    # restart interval yet still big enough to fill several 256 KiB blocks.
    count = 6000
    tail = "bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/kernel"
    names = [f"layer_{i:05d}/{tail}" for i in range(count)]
    prefix = str(tmp_path / "big")
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * count,
        tensors=[tf.constant(float(i)) for i in range(count)],
    )
    assert os.path.getsize(prefix + ".index") > 2 * TF_TABLE_BLOCK_SIZE
    _assert_matches_tensorflow(prefix)


def test_sharded_checkpoint(tmp_path: Path) -> None:
    # A sharded Saver writes one data file per device; two virtual CPUs give two shards.
    prefix = _save_with_saver(tmp_path / "model.ckpt", _albert_like_values(), devices=("/cpu:0", "/cpu:1"))
    assert sorted(p.name for p in tmp_path.glob("*.data-*")) == [
        "model.ckpt-123.data-00000-of-00002",
        "model.ckpt-123.data-00001-of-00002",
    ]
    _assert_matches_tensorflow(prefix)


def test_strings_are_listed_but_not_loaded(tmp_path: Path) -> None:
    # TF2 object-based checkpoints carry a string tensor describing the object graph.
    kernel = tf.Variable(np.arange(6, dtype=np.float32))
    prefix = tf.train.Checkpoint(kernel=kernel).write(str(tmp_path / "ckpt"))
    listed = tfc.list_variables(prefix)
    assert listed["_CHECKPOINTABLE_OBJECT_GRAPH"] == ((), np.dtype(object))
    with pytest.raises(InputError, match="_CHECKPOINTABLE_OBJECT_GRAPH.*string"):
        tfc.load_variables(prefix)
    numeric = [name for name, (_, dtype) in listed.items() if dtype != object]
    (kernel,) = tfc.load_variables(prefix, numeric).values()
    np.testing.assert_array_equal(kernel, np.arange(6, dtype=np.float32))


def test_partitioned_variable_is_listed_but_not_loaded(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ckpt")
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=["part", "part", "whole"],
        shape_and_slices=["4 6 0,2:-", "4 6 2,2:-", ""],
        tensors=[tf.zeros([2, 6]), tf.ones([2, 6]), tf.ones([3])],
    )
    assert tfc.list_variables(prefix) == {
        "part": ((4, 6), np.dtype(np.float32)),
        "whole": ((3,), np.dtype(np.float32)),
    }
    with pytest.raises(InputError, match="'part'.*partitioned"):
        tfc.load_variables(prefix)
    np.testing.assert_array_equal(tfc.load_variables(prefix, ["whole"])["whole"], np.ones(3))


def _touch_checkpoint(prefix: Path) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".index", ".data-00000-of-00001"):
        prefix.with_name(prefix.name + suffix).touch()


def test_find_checkpoint_uses_state_file(tmp_path: Path) -> None:
    for name in ("model.ckpt-100", "model.ckpt-900"):
        _touch_checkpoint(tmp_path / name)
    state = tmp_path / "checkpoint"
    state.write_text(
        'model_checkpoint_path: "model.ckpt-100"\nall_model_checkpoint_paths: "model.ckpt-900"\n'
    )
    assert tfc.find_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-100")
    # A checkpoint directory copied from the training machine still names the old absolute path.
    state.write_text('model_checkpoint_path: "/gone/train_dir/model.ckpt-100"\n')
    assert tfc.find_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-100")
    # A state file naming a checkpoint that is not there falls back to the newest one present.
    state.write_text('model_checkpoint_path: "model.ckpt-5"\n')
    assert tfc.find_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-900")


def test_find_checkpoint_without_state_file(tmp_path: Path) -> None:
    _touch_checkpoint(tmp_path / "best" / "model.ckpt-best")
    assert tfc.find_checkpoint(tmp_path / "best") == str(tmp_path / "best" / "model.ckpt-best")
    for name in ("model.ckpt-best", "model.ckpt-900", "model.ckpt-1000"):
        _touch_checkpoint(tmp_path / "steps" / name)
    assert tfc.find_checkpoint(tmp_path / "steps") == str(tmp_path / "steps" / "model.ckpt-1000")
    for name in ("a.ckpt", "b.ckpt"):
        _touch_checkpoint(tmp_path / "ambiguous" / name)
    with pytest.raises(InputError, match="several checkpoints"):
        tfc.find_checkpoint(tmp_path / "ambiguous")


def test_find_checkpoint_reports_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        tfc.find_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="model.ckpt-7"):
        tfc.find_checkpoint(tmp_path / "model.ckpt-7")


@pytest.fixture
def checkpoint_copy(albert_checkpoint: str, tmp_path: Path) -> Path:
    for path in Path(albert_checkpoint).parent.glob("model.ckpt-123.*"):
        shutil.copy(path, tmp_path)
    return tmp_path / "model.ckpt-123"


def _corrupt(path: Path, edit: Callable[[bytearray], bytearray]) -> None:
    data = bytearray(path.read_bytes())
    path.write_bytes(edit(data))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda data: data[:-10], "bad magic number"),
        (lambda data: data[:20], "too short"),
        (lambda data: data[:5] + bytes([data[5] ^ 0xFF]) + data[6:], "checksum mismatch"),
    ],
    ids=["truncated", "stub", "flipped-byte"],
)
def test_corrupt_index_names_the_file(
    checkpoint_copy: Path, edit: Callable[[bytearray], bytearray], message: str
) -> None:
    index = checkpoint_copy.with_name(checkpoint_copy.name + ".index")
    _corrupt(index, edit)
    with pytest.raises(InputError, match=message) as error:
        tfc.list_variables(checkpoint_copy)
    assert str(index) in str(error.value)


def test_truncated_data_names_the_file(checkpoint_copy: Path) -> None:
    data = checkpoint_copy.with_name(checkpoint_copy.name + ".data-00000-of-00001")
    _corrupt(data, lambda contents: contents[:-3])
    with pytest.raises(InputError, match="truncated") as error:
        tfc.load_variables(checkpoint_copy)
    assert str(data) in str(error.value)


def test_snappy_index_is_rejected(checkpoint_copy: Path) -> None:
    # TensorFlow never compresses bundle indexes: mark the index block snappy by hand, with a valid crc.
    index = checkpoint_copy.with_name(checkpoint_copy.name + ".index")

    def mark_snappy(data: bytearray) -> bytearray:
        footer = bytes(data[-48:])
        _, pos = tfc._varint(footer, 0)
        _, pos = tfc._varint(footer, pos)
        offset, pos = tfc._varint(footer, pos)
        size, _ = tfc._varint(footer, pos)
        end = offset + size
        data[end] = 1
        data[end + 1 : end + 5] = struct.pack("<I", tfc._masked_crc32c(data[offset : end + 1]))
        return data

    _corrupt(index, mark_snappy)
    with pytest.raises(InputError, match="snappy"):
        tfc.list_variables(checkpoint_copy)


def test_crc32c_known_answer() -> None:
    # CRC-32C("123456789") = 0xE3069283 (RFC 3720), stored masked.
    crc = 0xE3069283
    assert tfc._masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

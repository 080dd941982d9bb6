"""Tests for fastbp.datasets: IDX parsing, loaders and helpers."""

import gzip
import os
import struct

import numpy as np
import pytest

from fastbp import datasets
from fastbp.datasets import (
    load_digits,
    load_fashion_mnist,
    load_idx,
    one_hot,
    read_idx,
)

# Written independently of the implementation so the tests check the format
# itself, not the module against its own tables.
IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}

DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
SYSTEM_FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def idx_bytes(array):
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_dir(directory, n_train=6, n_test=4, rows=5, cols=3, gz=True,
                 test_prefix="t10k", sep="-", seed=0):
    """Write a tiny MNIST-layout dataset; return the raw arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    raw = {}
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), (test_prefix, n_test)):
        images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(directory / f"{prefix}-images{sep}idx3-ubyte{suffix}", images, gz)
        write_idx(directory / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels, gz)
        raw[prefix] = (images, labels)
    return raw


# ---------------------------------------------------------------------------
# read_idx


def test_read_idx_plain_1d_labels(tmp_path):
    labels = np.array([5, 0, 4, 1, 9, 2], dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / "labels-idx1-ubyte", labels))
    assert out.dtype == np.uint8
    assert out.shape == (6,)
    np.testing.assert_array_equal(out, labels)


def test_read_idx_gzip_3d_images(tmp_path):
    images = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    out = read_idx(write_idx(tmp_path / "images-idx3-ubyte.gz", images, gz=True))
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out, images)


def test_read_idx_detects_gzip_by_content_and_accepts_pathlike_and_str(tmp_path):
    images = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    path = write_idx(tmp_path / "no-extension", images, gz=True)
    np.testing.assert_array_equal(read_idx(path), images)
    np.testing.assert_array_equal(read_idx(str(path)), images)


@pytest.mark.parametrize("dtype", sorted(IDX_CODES, key=str))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_all_types_native_order_and_writable(tmp_path, dtype, gz):
    values = np.array([[-3, 0, 7], [100, 1, -1]]).astype(dtype) if dtype.kind != "u" \
        else np.array([[3, 0, 7], [255, 1, 2]], dtype=dtype)
    out = read_idx(write_idx(tmp_path / "x.idx", values, gz))
    assert out.dtype == dtype  # values, not just kind
    assert out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, values)


def test_read_idx_empty_dimension(tmp_path):
    out = read_idx(write_idx(tmp_path / "e.idx", np.zeros((0, 28, 28), np.uint8)))
    assert out.shape == (0, 28, 28)


VALID = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))

CORRUPT = {
    "empty": b"",
    "short magic": b"\x00\x00\x08",
    "nonzero magic": b"\x01\x00" + VALID[2:],
    "png instead": b"\x89PNG\r\n\x1a\n" + bytes(40),
    "unknown type code": VALID[:2] + b"\x07" + VALID[3:],
    "zero dimensions": b"\x00\x00\x08\x00",
    "truncated dims": VALID[:10],
    "truncated data": VALID[:-1],
    "trailing bytes": VALID + b"\x00",
    "wrong ndim": VALID[:3] + b"\x02" + VALID[4:],
    "huge claimed size": b"\x00\x00\x0e\x02\xff\xff\xff\xff\xff\xff\xff\xff" + bytes(8),
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", list(CORRUPT))
def test_read_idx_corrupt_raises_value_error_naming_file(tmp_path, name, gz):
    data = CORRUPT[name]
    path = tmp_path / f"bad file {name}.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError) as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("damage", ["truncated stream", "flipped byte", "bad crc"])
def test_read_idx_corrupt_gzip_raises_value_error(tmp_path, damage):
    packed = bytearray(gzip.compress(VALID))
    if damage == "truncated stream":
        packed = packed[: len(packed) // 2]
    elif damage == "flipped byte":
        packed[len(packed) // 2] ^= 0xFF
    else:
        packed[-8] ^= 0xFF  # CRC32 field of the gzip trailer
    path = tmp_path / "damaged.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(ValueError) as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def test_read_idx_rejects_non_path():
    with pytest.raises(TypeError, match="path"):
        read_idx(123)


# ---------------------------------------------------------------------------
# load_idx


def test_load_idx_synthetic_directory(tmp_path):
    raw = make_idx_dir(tmp_path)
    (X_train, y_train), (X_test, y_test) = load_idx(tmp_path)

    assert X_train.shape == (6, 15) and X_test.shape == (4, 15)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.shape == (4,)
    np.testing.assert_allclose(X_train, raw["train"][0].reshape(6, 15) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(X_test, raw["t10k"][0].reshape(4, 15) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_train, raw["train"][1])
    np.testing.assert_array_equal(y_test, raw["t10k"][1])
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0


def test_load_idx_options(tmp_path):
    raw = make_idx_dir(tmp_path, gz=False, test_prefix="test", sep=".")
    X, y = load_idx(str(tmp_path), kind="test", dtype=np.float64, flatten=False)
    assert X.shape == (4, 5, 3) and X.dtype == np.float64
    np.testing.assert_array_equal(X, raw["test"][0] / 255.0)
    np.testing.assert_array_equal(y, raw["test"][1])
    X, _ = load_idx(tmp_path, kind="train")
    assert X.shape == (6, 15)


def test_load_idx_single_split_needs_only_its_files(tmp_path):
    make_idx_dir(tmp_path)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).unlink()
    X, y = load_idx(tmp_path, kind="train")
    assert X.shape[0] == y.shape[0] == 6
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        load_idx(tmp_path)


def test_load_idx_count_mismatch(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), gz=True)
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        load_idx(tmp_path)


def test_load_idx_labels_file_swapped_for_images(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((6, 2, 2), np.uint8), gz=True)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        load_idx(tmp_path)


def test_load_idx_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx(tmp_path / "absent")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        load_idx(tmp_path / "file")


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"kind": "validation"}, ValueError, "kind"),
    ({"kind": None}, ValueError, "kind"),
    ({"dtype": np.int32}, ValueError, "dtype"),
    ({"dtype": "not a dtype"}, TypeError, "dtype"),
    ({"flatten": "yes"}, TypeError, "flatten"),
])
def test_load_idx_bad_arguments(tmp_path, kwargs, exc, words):
    make_idx_dir(tmp_path)
    with pytest.raises(exc, match=words):
        load_idx(tmp_path, **kwargs)


# ---------------------------------------------------------------------------
# load_digits


def test_load_digits_shapes_dtypes_ranges():
    (X_train, y_train), (X_test, y_test) = load_digits()
    assert X_train.shape == (1348, 64) and X_test.shape == (449, 64)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    X = np.concatenate([X_train, X_test])
    assert X.min() == 0.0 and X.max() == 1.0
    # Every value is a pixel count divided by 16.
    np.testing.assert_array_equal(X * 16, np.rint(X * 16))
    y = np.concatenate([y_train, y_test])
    np.testing.assert_array_equal(np.bincount(y, minlength=10), DIGITS_CLASS_COUNTS)
    assert set(np.unique(y_train)) == set(range(10))
    assert set(np.unique(y_test)) == set(range(10))


def test_load_digits_split_is_partition_of_shipped_data():
    (X_train, y_train), (X_test, y_test) = load_digits(test_size=0.3, seed=7)
    path = os.path.join(os.path.dirname(datasets.__file__), "data", "digits.npz")
    with np.load(path, allow_pickle=False) as npz:
        images, target = npz["images"], npz["target"]
    expected = sorted(img.tobytes() + bytes([t]) for img, t in zip(images, target))
    got = np.concatenate([X_train, X_test]) * 16
    got_labels = np.concatenate([y_train, y_test])
    actual = sorted(np.rint(row).astype(np.uint8).tobytes() + bytes([int(t)])
                    for row, t in zip(got, got_labels))
    assert actual == expected


def test_load_digits_reproducible_and_seed_dependent():
    a = load_digits(seed=3)
    b = load_digits(seed=3)
    c = load_digits(seed=4)
    for (Xa, ya), (Xb, yb) in zip(a, b):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[1][0], c[1][0])
    gen = load_digits(seed=np.random.default_rng(3))
    np.testing.assert_array_equal(gen[0][1], a[0][1])


def test_load_digits_stratified_and_shuffled():
    (_, y_train), (_, y_test) = load_digits(test_size=0.2, seed=1)
    assert y_test.shape == (359,)  # round(0.2 * 1797)
    share = np.bincount(y_test, minlength=10) / np.array(DIGITS_CLASS_COUNTS)
    np.testing.assert_allclose(share, 0.2, atol=0.01)
    # Shuffled: labels are not grouped by class.
    assert np.count_nonzero(np.diff(y_train)) > 500


def test_load_digits_options():
    (X_train, _), (X_test, _) = load_digits(test_size=0.5, dtype=np.float64, flatten=False)
    assert X_train.shape[1:] == (8, 8) and X_train.dtype == np.float64
    assert X_train.shape[0] + X_test.shape[0] == 1797
    assert abs(X_train.shape[0] - X_test.shape[0]) <= 1


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"test_size": 0}, ValueError, "test_size"),
    ({"test_size": 1.0}, ValueError, "test_size"),
    ({"test_size": -0.1}, ValueError, "test_size"),
    ({"test_size": 1.5}, ValueError, "test_size"),
    ({"test_size": "0.2"}, TypeError, "test_size"),
    ({"test_size": True}, TypeError, "test_size"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"seed": -1}, ValueError, "seed"),
    ({"dtype": np.uint8}, ValueError, "dtype"),
    ({"flatten": 1}, TypeError, "flatten"),
])
def test_load_digits_bad_arguments(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        load_digits(**kwargs)


# ---------------------------------------------------------------------------
# load_fashion_mnist


@pytest.mark.skipif(not os.path.isdir(SYSTEM_FASHION_DIR),
                    reason=f"Fashion-MNIST not installed at {SYSTEM_FASHION_DIR} "
                           "(apt-get install dataset-fashion-mnist)")
def test_load_fashion_mnist_system_copy(monkeypatch):
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)
    (X_train, y_train), (X_test, y_test) = load_fashion_mnist()
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)


@pytest.mark.parametrize("subdir", ["", "fashion-mnist"])
def test_load_fashion_mnist_uses_fastbp_data_first(tmp_path, monkeypatch, subdir):
    raw = make_idx_dir(tmp_path / subdir, rows=28, cols=28)
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", (str(tmp_path / "absent"),))
    (X_train, y_train), (X_test, _) = load_fashion_mnist(dtype=np.float64)
    assert X_train.shape == (6, 784) and X_test.shape == (4, 784)
    assert X_train.dtype == np.float64
    np.testing.assert_array_equal(y_train, raw["train"][1])


def test_load_fashion_mnist_rejects_other_image_size(tmp_path, monkeypatch):
    make_idx_dir(tmp_path, rows=8, cols=8)
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", ())
    with pytest.raises(ValueError, match="28x28"):
        load_fashion_mnist()


def test_load_fashion_mnist_not_found_message(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(empty))
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", (str(tmp_path / "no-system-dir"),))
    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist()
    message = str(excinfo.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "FASTBP_DATA" in message
    assert str(empty) in message and "no-system-dir" in message


# ---------------------------------------------------------------------------
# one_hot


def test_one_hot_basic():
    out = one_hot([2, 0, 1, 2])
    expected = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_one_hot_n_classes_and_dtype():
    out = one_hot(np.array([1, 3], dtype=np.uint8), n_classes=5, dtype=np.float64)
    assert out.shape == (2, 5) and out.dtype == np.float64
    np.testing.assert_array_equal(out.argmax(axis=1), [1, 3])
    np.testing.assert_array_equal(out.sum(axis=1), [1, 1])
    assert one_hot(np.array([], dtype=np.int64), n_classes=3).shape == (0, 3)


@pytest.mark.parametrize("y, kwargs, exc, words", [
    ([0.0, 1.0], {}, TypeError, "y"),
    ([[0, 1]], {}, ValueError, "1-D"),
    ([-1, 2], {}, ValueError, "non-negative"),
    ([0, 5], {"n_classes": 5}, ValueError, "n_classes"),
    ([0, 1], {"n_classes": 0}, ValueError, "n_classes"),
    ([0, 1], {"n_classes": 2.0}, TypeError, "n_classes"),
    (np.array([], dtype=np.int64), {}, ValueError, "n_classes"),
])
def test_one_hot_bad_arguments(y, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        one_hot(y, **kwargs)


# ---------------------------------------------------------------------------
# load_npy: memory-mapped arrays and their shards


def test_load_npy_maps_the_file_and_shards_it_in_blocks(tmp_path):
    X = np.arange(103 * 4, dtype=np.float32).reshape(103, 4)
    path = tmp_path / "X.npy"
    np.save(path, X)
    whole = datasets.load_npy(path)
    assert isinstance(whole, np.memmap) and not whole.flags.writeable
    np.testing.assert_array_equal(whole, X)
    blocks = [datasets.load_npy(path, shard=(r, 3)) for r in range(3)]
    assert [len(b) for b in blocks] == [34, 34, 35]
    assert all(isinstance(b, np.memmap) for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), X)
    read = datasets.load_npy(str(path), mmap=False, shard=(2, 3))
    assert not isinstance(read, np.memmap)
    np.testing.assert_array_equal(read, X[68:])


def test_fit_uses_a_memory_mapped_shard_without_copying_it(tmp_path):
    import fastbp
    from fastbp import training

    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.random((60, 5), dtype=np.float32))
    X = datasets.load_npy(tmp_path / "X.npy", shard=(1, 2))
    y = rng.integers(0, 3, len(X))
    net = fastbp.Network([5, 4, 3], output="softmax", loss="cross_entropy", seed=0)
    plan = training.prepare(net, X, y, 1, 8, 0.1, "sgd", 0.0, False, 0.9, 0.999, 1e-8,
                            True, None, False, None, False, True, None)
    assert np.shares_memory(plan.X, X)
    net.fit(X, y, epochs=2, batch_size=8)   # and trains from it
    assert np.isfinite(net._params).all()


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0), (1,), "0,2", (0.0, 2), (True, 2)])
def test_load_npy_rejects_bad_shards(tmp_path, shard):
    np.save(tmp_path / "X.npy", np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shard must be a pair \(rank, size\)"):
        datasets.load_npy(tmp_path / "X.npy", shard=shard)


def test_load_npy_rejects_npz_and_non_npy_files(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="an .npz archive"):
        datasets.load_npy(tmp_path / "a.npz")
    (tmp_path / "b.npy").write_bytes(b"not a numpy file at all")
    with pytest.raises(ValueError, match="not a .npy file"):
        datasets.load_npy(tmp_path / "b.npy")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        datasets.load_npy(3)

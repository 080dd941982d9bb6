"""Datasets for training and testing fastbp networks.

Three sources are supported:

* :func:`load_digits` -- the UCI handwritten digits (8x8, 1797 images),
  shipped inside the package, so it always works offline.
* :func:`load_fashion_mnist` -- Fashion-MNIST (28x28, 60000 + 10000
  images) from ``$FASTBP_DATA`` or from Debian's ``dataset-fashion-mnist``
  package.
* :func:`load_idx` / :func:`read_idx` -- any directory of MNIST-format
  IDX files (MNIST, Fashion-MNIST, ...), gzipped or not.
* :func:`load_npy` -- one array from a ``.npy`` file, memory-mapped, optionally
  one process's shard of it (data larger than memory, distributed training).

All loaders return ``(X_train, y_train), (X_test, y_test)`` where each row
of ``X`` is one sample scaled to [0, 1] and ``y`` holds int64 class labels.
Use :func:`one_hot` to turn labels into training targets.
"""

import gzip
import importlib.resources
import math
import numbers
import os
import zlib

import numpy as np

__all__ = [
    "read_idx",
    "load_idx",
    "load_digits",
    "load_fashion_mnist",
    "load_npy",
    "one_hot",
    "DATA_ENV_VAR",
    "FASHION_MNIST_DIRS",
]

#: Environment variable naming a user data directory, searched first.
DATA_ENV_VAR = "FASTBP_DATA"

#: System directories searched for Fashion-MNIST after ``$FASTBP_DATA``.
#: A module-level constant so that tests (and unusual installs) can change it.
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)

# IDX element type codes (third byte of the magic number).  IDX data is
# big-endian, hence the explicit '>' byte order.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"

# Read in bounded chunks: a corrupt header may claim a huge size, and we
# must notice the file is short rather than try to allocate that much.
_READ_CHUNK = 1 << 24

# Accepted IDX file names.  The official files are
# ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; some mirrors and
# unpackers use ``test-`` or ``images.idx3-ubyte`` instead.  Plain files
# are listed before gzipped ones since they are faster to read.
_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
_PART_STEMS = {
    "images": ("images-idx3-ubyte", "images.idx3-ubyte"),
    "labels": ("labels-idx1-ubyte", "labels.idx1-ubyte"),
}
_KINDS = ("all", "train", "test")

_DIGITS_RESOURCE = "data/digits.npz"
_DIGITS_MAX_PIXEL = 16


# ---------------------------------------------------------------------------
# argument validation helpers


def _check_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    return os.fspath(value)


def _check_float_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(
            f"dtype must be a NumPy floating dtype such as numpy.float32, "
            f"got {dtype!r}") from exc
    if dt.kind != "f":
        raise ValueError(
            f"dtype must be a floating dtype (e.g. numpy.float32 or "
            f"numpy.float64), got {dt}")
    return dt


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _to_features(images, dtype, scale, flatten):
    """Scale integer images to [0, 1] in ``dtype``, one sample per row."""
    X = images.astype(dtype)
    X /= dtype.type(scale)
    if flatten:
        X = X.reshape(X.shape[0], -1)
    return X


# ---------------------------------------------------------------------------
# IDX files


def _read_exact(fh, n):
    """Read up to ``n`` bytes, stopping early only at end of file."""
    buf = bytearray()
    while len(buf) < n:
        chunk = fh.read(min(_READ_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _parse_idx(fh, path):
    header = _read_exact(fh, 4)
    if len(header) < 4:
        raise ValueError(
            f"{path}: not an IDX file: expected a 4-byte magic number, "
            f"found only {len(header)} byte(s)")
    if header[0] != 0 or header[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number {bytes(header).hex()} "
            f"must start with two zero bytes")
    code, ndim = header[2], header[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{path}: unknown IDX data type code 0x{code:02x} "
            f"(expected one of {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions (expected at least 1)")

    dims_raw = _read_exact(fh, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimension(s) need "
            f"{4 * ndim} bytes, found {len(dims_raw)}")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))

    dtype = _IDX_DTYPES[code]
    count = math.prod(shape)
    expected = count * dtype.itemsize
    # One byte more than needed tells us whether there is trailing junk.
    data = _read_exact(fh, expected + 1)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes in"
        found = f"{len(data)}" if len(data) <= expected else "more"
        raise ValueError(
            f"{path}: {what} IDX data: shape {shape} of {dtype.str[1:]} needs "
            f"{expected} bytes after the {4 + 4 * ndim}-byte header, found {found}")

    arr = np.frombuffer(data, dtype=dtype, count=count)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))  # native order for speed
    return arr.reshape(shape)


def read_idx(path):
    """Read one IDX file (the MNIST file format) into an array.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.  Gzip compression is detected from the file content,
        not its name.

    Returns
    -------
    numpy.ndarray
        Writable array in native byte order with the dtype (uint8, int8,
        int16, int32, float32 or float64) and shape given by the header.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a valid IDX file: bad magic number, unknown
        type code, truncated header or data, trailing bytes, or a corrupt
        gzip stream.  The message names the file.
    TypeError
        If ``path`` is not a str or path-like object.

    Notes
    -----
    An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the
    element type code, ``NN`` the number of dimensions), then ``NN``
    big-endian uint32 sizes, then the elements in C order, big-endian.
    """
    path = _check_path(path, "path")
    with open(path, "rb") as raw:  # FileNotFoundError propagates as is
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _parse_idx(raw, path)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                return _parse_idx(fh, path)
        except (OSError, EOFError, zlib.error) as exc:
            # gzip reports truncation as EOFError and bad data as
            # BadGzipFile (an OSError) or zlib.error.
            raise ValueError(f"{path}: corrupt gzip data: {exc}") from exc


def _find_idx_file(directory, split, part):
    candidates = [
        f"{prefix}-{stem}{suffix}"
        for prefix in _SPLIT_PREFIXES[split]
        for stem in _PART_STEMS[part]
        for suffix in ("", ".gz")
    ]
    for name in candidates:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"no {split} {part} IDX file in {directory}; looked for: "
        + ", ".join(candidates))


def _has_idx_files(directory):
    try:
        for split in _SPLIT_PREFIXES:
            for part in _PART_STEMS:
                _find_idx_file(directory, split, part)
    except FileNotFoundError:
        return False
    return True


def _load_idx_split(directory, split, dtype, flatten):
    images_path = _find_idx_file(directory, split, "images")
    labels_path = _find_idx_file(directory, split, "labels")
    images = read_idx(images_path)
    labels = read_idx(labels_path)

    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(
            f"{images_path}: expected unsigned-byte images of shape "
            f"(n, rows, cols), got {images.dtype} of shape {images.shape}")
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: expected a 1-D integer label array, got "
            f"{labels.dtype} of shape {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{split} split in {directory}: {images.shape[0]} images but "
            f"{labels.shape[0]} labels")
    return _to_features(images, dtype, 255, flatten), labels.astype(np.int64)


def load_idx(directory, kind="all", *, dtype=np.float32, flatten=True):
    """Load an MNIST-format dataset from a directory of IDX files.

    Works for MNIST, Fashion-MNIST and anything else distributed the same
    way.  File names are ``{train,t10k}-images-idx3-ubyte`` and
    ``{train,t10k}-labels-idx1-ubyte``, each optionally gzipped (``.gz``);
    ``test-`` instead of ``t10k-`` and ``images.idx3-ubyte`` instead of
    ``images-idx3-ubyte`` (likewise for labels) are also accepted.

    Parameters
    ----------
    directory : str or os.PathLike
        Directory holding the IDX files.
    kind : {"all", "train", "test"}, default "all"
        Which split(s) to load.  Only the files of the requested split(s)
        need to exist.
    dtype : numpy dtype, default numpy.float32
        Floating dtype of the image array.
    flatten : bool, default True
        If True, each image becomes one row of ``rows * cols`` features;
        otherwise images keep their ``(rows, cols)`` shape.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        When ``kind="all"``.  ``X`` has shape ``(n, rows * cols)`` (or
        ``(n, rows, cols)``), values in [0, 1] (pixel / 255); ``y`` is
        int64 of shape ``(n,)``.
    X, y
        When ``kind`` is ``"train"`` or ``"test"``.

    Raises
    ------
    FileNotFoundError
        If ``directory`` or a required file is missing; the message lists
        the file names tried.
    NotADirectoryError
        If ``directory`` exists but is not a directory.
    ValueError
        If a file is corrupt, images and labels disagree in count, or an
        argument has an invalid value.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> (X_train, y_train), (X_test, y_test) = load_idx("/data/mnist")  # doctest: +SKIP
    >>> X_train.shape, X_test.shape                                      # doctest: +SKIP
    ((60000, 784), (10000, 784))
    """
    directory = _check_path(directory, "directory")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    dt = _check_float_dtype(dtype)
    flatten = _check_bool(flatten, "flatten")
    if not os.path.exists(directory):
        raise FileNotFoundError(f"IDX directory {directory} does not exist")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"IDX directory {directory} is not a directory")

    if kind != "all":
        return _load_idx_split(directory, kind, dt, flatten)
    return (_load_idx_split(directory, "train", dt, flatten),
            _load_idx_split(directory, "test", dt, flatten))


# ---------------------------------------------------------------------------
# Fashion-MNIST


def _fashion_mnist_search_path():
    dirs = []
    user_dir = os.environ.get(DATA_ENV_VAR, "")
    if user_dir:
        # The more specific sub-directory first, so a FASTBP_DATA that also
        # holds plain MNIST at its top level still yields Fashion-MNIST.
        dirs += [os.path.join(user_dir, "fashion-mnist"), user_dir]
    dirs += [os.fspath(d) for d in FASHION_MNIST_DIRS]
    return dirs


def load_fashion_mnist(dtype=np.float32, *, flatten=True):
    """Load Fashion-MNIST (Zalando; 28x28 greyscale, 10 clothing classes).

    The IDX files are looked for, in order, in ``$FASTBP_DATA/fashion-mnist``
    and ``$FASTBP_DATA`` (when the environment variable is set and not
    empty), then in each directory of :data:`FASHION_MNIST_DIRS`
    (``/usr/share/datasets/fashion-mnist``, where Debian's
    ``dataset-fashion-mnist`` package installs them).  The first directory
    holding all four files is used.

    Parameters
    ----------
    dtype : numpy dtype, default numpy.float32
        Floating dtype of the image arrays.
    flatten : bool, default True
        If True images are rows of 784 features, else ``(28, 28)`` arrays.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        ``X`` of shape ``(n, 784)`` with values in [0, 1]; ``y`` int64 in
        0..9.  The standard files give 60000 training and 10000 test
        samples.

    Raises
    ------
    FileNotFoundError
        If no searched directory holds the files; the message lists the
        directories and says how to install the data.
    ValueError
        If the files found are corrupt or are not 28x28 images with labels
        0..9.
    """
    dt = _check_float_dtype(dtype)
    flatten = _check_bool(flatten, "flatten")
    searched = _fashion_mnist_search_path()
    for directory in searched:
        if os.path.isdir(directory) and _has_idx_files(directory):
            break
    else:
        raise FileNotFoundError(
            "Fashion-MNIST not found; searched: " + ", ".join(searched) + ". "
            "Install it with `apt-get install dataset-fashion-mnist` (Debian/"
            "Ubuntu), or download the four IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) from "
            "https://github.com/zalandoresearch/fashion-mnist into a directory "
            f"and set {DATA_ENV_VAR} to that directory.")

    (X_train, y_train), (X_test, y_test) = splits = load_idx(
        directory, dtype=dt, flatten=False)
    # Catch a directory that holds some other IDX dataset.
    for X, y, split in ((X_train, y_train, "train"), (X_test, y_test, "test")):
        if X.shape[1:] != (28, 28):
            raise ValueError(
                f"{directory}: Fashion-MNIST {split} images must be 28x28, "
                f"got {X.shape[1:]}")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise ValueError(
                f"{directory}: Fashion-MNIST {split} labels must be in 0..9, "
                f"got range {y.min()}..{y.max()}")
    if flatten:
        splits = tuple((X.reshape(X.shape[0], -1), y) for X, y in splits)
    return splits


# ---------------------------------------------------------------------------
# UCI digits (shipped)


def _read_digits_file():
    resource = importlib.resources.files(__package__).joinpath(_DIGITS_RESOURCE)
    with importlib.resources.as_file(resource) as path:
        with np.load(path, allow_pickle=False) as npz:
            images, target = npz["images"], npz["target"]
    if (images.dtype != np.uint8 or images.ndim != 3 or target.dtype != np.uint8
            or target.shape != images.shape[:1] or images.max() > _DIGITS_MAX_PIXEL
            or target.max() > 9):
        raise ValueError(f"{resource}: packaged digits data is corrupt")
    return images, target


def _check_test_size(test_size):
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(
            f"test_size must be a float in (0, 1), got {type(test_size).__name__}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in the open interval (0, 1), got {test_size!r}")
    return float(test_size)


def _make_rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, numbers.Integral)):
        raise TypeError(
            f"seed must be an int, a numpy.random.Generator or None, "
            f"got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng(seed)


def _stratified_split(labels, test_size, rng):
    """Return shuffled ``(train_idx, test_idx)`` keeping class proportions.

    The test set has exactly ``round(test_size * n)`` samples (at least 1,
    leaving at least 1 for training); the per-class shares are apportioned
    by the largest-remainder rule so that they add up to that total.
    """
    n = labels.shape[0]
    n_test = min(max(round(test_size * n), 1), n - 1)
    classes, counts = np.unique(labels, return_counts=True)
    exact = n_test * counts / n
    quota = np.floor(exact).astype(np.int64)
    # Stable sort: ties go to the lower class label, deterministically.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n_test - quota.sum()]] += 1

    train_parts, test_parts = [], []
    for cls, k in zip(classes, quota):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        test_parts.append(idx[:k])
        train_parts.append(idx[k:])
    # Shuffle across classes so batches taken in order are not one class.
    train_idx = rng.permutation(np.concatenate(train_parts))
    test_idx = rng.permutation(np.concatenate(test_parts))
    return train_idx, test_idx


def load_digits(test_size=0.25, seed=0, dtype=np.float32, *, flatten=True):
    """Load the UCI handwritten digits shipped with fastbp, split in two.

    1797 greyscale 8x8 images of the digits 0-9 (the copy distributed with
    scikit-learn; E. Alpaydin and C. Kaynak, UCI Machine Learning
    Repository, CC BY 4.0).  No download is needed.

    Parameters
    ----------
    test_size : float, default 0.25
        Fraction of the samples put in the test set, in (0, 1).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the split; the same int always gives the same split.
        None gives a different split each call.
    dtype : numpy dtype, default numpy.float32
        Floating dtype of the image arrays.
    flatten : bool, default True
        If True images are rows of 64 features, else ``(8, 8)`` arrays.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        ``X`` of shape ``(n, 64)`` with values in [0, 1] (pixel count /
        16); ``y`` int64 labels in 0..9.  The split is stratified: each
        digit appears in the same proportion in both parts, and both parts
        are shuffled.

    Examples
    --------
    >>> (X_train, y_train), (X_test, y_test) = load_digits()
    >>> X_train.shape, X_test.shape
    ((1348, 64), (449, 64))
    """
    test_size = _check_test_size(test_size)
    rng = _make_rng(seed)
    dt = _check_float_dtype(dtype)
    flatten = _check_bool(flatten, "flatten")

    images, target = _read_digits_file()
    train_idx, test_idx = _stratified_split(target, test_size, rng)
    X = _to_features(images, dt, _DIGITS_MAX_PIXEL, flatten)
    y = target.astype(np.int64)
    return (X[train_idx], y[train_idx]), (X[test_idx], y[test_idx])


# ---------------------------------------------------------------------------
# helpers


def load_npy(path, mmap=True, shard=None):
    """Read one array from a ``.npy`` file, memory-mapped (read-only) by default.

    Parameters
    ----------
    path : str or os.PathLike
    mmap : bool
        Map the file (``mmap_mode="r"``) instead of reading it: pages are read
        only when touched, so an array larger than memory can be used, and
        ``Network.fit`` uses a C-contiguous float array of the network's dtype
        where it lies, without copying it.
    shard : (rank, size), optional
        Only the rows ``[rank * n // size, (rank + 1) * n // size)``: process
        ``rank``'s contiguous block of ``size`` near-equal blocks, still
        memory-mapped (a process of a distributed fit touches only its rows).
        Blocks of a file sorted by class are sorted too: shuffle such a file
        once beforehand (``fit(shuffle=True)`` shuffles within a shard).

    Returns
    -------
    ndarray (a read-only ``numpy.memmap`` when ``mmap``)
    """
    path = _check_path(path, "path")
    mmap = _check_bool(mmap, "mmap")
    if shard is not None:
        if (not isinstance(shard, (tuple, list)) or len(shard) != 2
                or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                           for v in shard)
                or not 0 <= shard[0] < shard[1]):
            raise ValueError(f"shard must be a pair (rank, size) of integers with "
                             f"0 <= rank < size, got {shard!r}")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not a .npy file of a plain array ({exc})") from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise ValueError(f"{path}: expected a .npy file holding one array, got an .npz "
                         f"archive")
    if shard is not None:
        if array.ndim == 0:
            raise ValueError(f"{path}: a 0-d array has no rows to shard")
        rank, size = int(shard[0]), int(shard[1])
        n = array.shape[0]
        array = array[rank * n // size:(rank + 1) * n // size]
    return array


def one_hot(y, n_classes=None, dtype=np.float32):
    """Encode integer class labels as one-hot rows.

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Class labels, each in ``0 .. n_classes - 1``.
    n_classes : int, optional
        Number of classes (columns).  Defaults to ``max(y) + 1``.
    dtype : numpy dtype, default numpy.float32
        Dtype of the result.

    Returns
    -------
    numpy.ndarray, shape (n, n_classes)
        ``out[i, y[i]] == 1`` and every other entry is 0.

    Examples
    --------
    >>> one_hot([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"y must hold integers, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"y must be non-negative, got minimum {labels.min()}")

    if n_classes is None:
        if labels.size == 0:
            raise ValueError("n_classes must be given when y is empty")
        n_classes = int(labels.max()) + 1
    elif isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, numbers.Integral):
        raise TypeError(f"n_classes must be an int, got {type(n_classes).__name__}")
    elif n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    elif labels.size and labels.max() >= n_classes:
        raise ValueError(
            f"y holds label {labels.max()}, which needs n_classes > "
            f"{labels.max()}, got n_classes={n_classes}")

    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a NumPy dtype, got {dtype!r}") from exc
    out = np.zeros((labels.shape[0], int(n_classes)), dtype=dt)
    out[np.arange(labels.shape[0]), labels] = 1
    return out

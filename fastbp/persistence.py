"""Saving and loading networks: .npz archives of arrays and text, never pickles.

Checkpoints (fastbp/checkpoints.py) are model files with the training state added, so
``load`` reads both: it restores the network here and hands a checkpoint's other
entries to fastbp.checkpoints. ``save`` writes to a temporary file in the target's folder, flushes it to disk and
renames it over the target, so that a crash never leaves a half-written file; ``load``
validates everything it reads (format version, every array's shape, dtype and
finiteness) and rejects truncated, corrupted or hand-edited files with ValueError.
"""

import os
import secrets
import zipfile
import zlib

import numpy as np

FORMAT_VERSION = 1


def _create_temporary(folder, suffix):
    """A new file next to the target, opened for writing, with the mode a plain open()
    gives (0666 less the umask, applied by the kernel): no umask juggling, which would
    change the mode of files other threads create meanwhile."""
    for _ in range(100):
        tmp = os.path.join(folder, f".fastbp-{os.getpid()}-{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f"could not create a temporary file in {folder!r}")


def write_npz_atomically(path, arrays):
    """Write ``arrays`` (name -> ndarray) to the .npz ``path`` so that it is never seen
    half-written (see :func:`write_atomically`). Returns ``path``."""
    return write_atomically(path, lambda f: np.savez(f, **arrays), ".npz.tmp")


def write_atomically(path, write, suffix):
    """Write a file that is never seen half-written: ``write(f)`` fills a temporary file
    (name ending in ``suffix``) in ``path``'s folder, which is flushed to disk and
    renamed over ``path``. The file gets the mode a plain open() gives. Returns
    ``path``. Models, checkpoints and ONNX exports are all written so."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temporary(folder, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save(net, path):
    """Write the network to ``path`` as an .npz archive (no pickle), atomically.

    The file holds the format version, sizes, activations, loss, dtype, l2, bias
    flag, weights and biases. It is written to a temporary file in the same folder
    and renamed over ``path``, so a crash never leaves a half-written model.
    """
    return write_npz_atomically(path, model_arrays(net))


# The entries of a model file besides the weights and biases.
MODEL_KEYS = ("format_version", "sizes", "activation", "output", "loss", "dtype", "l2", "bias")


def model_arrays(net):
    """The entries of a model file: name -> ndarray (the parameters are views, not copies)."""
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "sizes": np.array(net.sizes, dtype=np.int64),
        "activation": np.array(net.activation),
        "output": np.array(net.output),
        "loss": np.array(net.loss_name),
        "dtype": np.array(net.dtype.name),
        "l2": np.array(net.l2),
        "bias": np.array(net.bias),
    }
    for l in range(net.n_layers):
        arrays[f"W{l}"] = net.weights[l]
        if net.bias:
            arrays[f"b{l}"] = net.biases[l]
    return arrays


def load(cls, path, backend=None):
    """Read a network written by :meth:`save` or a checkpoint written by ``fit(checkpoint=)``;
    raise ValueError on anything malformed."""
    from fastbp import checkpoints

    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path!r} is not a readable fastbp model file: {exc}") from exc
    if not hasattr(archive, "files"):
        raise ValueError(f"{path!r} is a single .npy array, not a fastbp model archive")
    with archive:
        try:
            is_checkpoint = checkpoints.VERSION_KEY in archive.files
            if is_checkpoint:
                checkpoints.check_version(archive, path)
                if backend is None:
                    backend = checkpoints.recorded_backend(archive, path)
            elif backend is None:
                backend = "cython"
            net = _from_archive(cls, archive, path, backend,
                                checkpoints.ENTRIES if is_checkpoint else ())
            if is_checkpoint:
                checkpoints.restore(net, archive, path)
            return net
        except ValueError:
            raise
        except (KeyError, TypeError, IndexError, OSError, EOFError, zipfile.BadZipFile,
                zlib.error) as exc:
            # Truncated or corrupted members (bad CRC, broken deflate stream) and
            # missing entries: the file is damaged or was not written by save().
            raise ValueError(f"{path!r} is not a valid fastbp model file: {exc!r}") from exc


def scalar(archive, key, kind, path):
    """The 0-d entry ``key`` of ``archive`` as a Python value; its dtype kind must be in ``kind``."""
    if key not in archive.files:
        raise ValueError(f"{path!r}: missing entry {key!r}")
    value = archive[key]
    if value.shape != () or value.dtype.kind not in kind:
        raise ValueError(f"{path!r}: {key!r} must be a scalar of kind {kind!r}, "
                         f"got shape {value.shape} dtype {value.dtype}")
    return value.item()


def _from_archive(cls, archive, path, backend, extra_keys=()):
    def scalar_of(key, kind):
        return scalar(archive, key, kind, path)

    version = scalar_of("format_version", "iu")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path!r} has format version {version}; this fastbp reads "
                         f"version {FORMAT_VERSION}")
    sizes = archive["sizes"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or (sizes < 1).any():
        raise ValueError(f"{path!r}: sizes must be a list of >= 2 positive ints, got {sizes!r}")
    bias = scalar_of("bias", "b")
    # The arrays' recorded shapes must match sizes before anything is allocated:
    # hand-edited sizes must not make load allocate what the file does not hold.
    for l in range(len(sizes) - 1):
        expected_shapes = {f"W{l}": (int(sizes[l + 1]), int(sizes[l]))}
        if bias:
            expected_shapes[f"b{l}"] = (int(sizes[l + 1]),)
        for key, shape in expected_shapes.items():
            if key not in archive.files:
                raise ValueError(f"{path!r}: missing array {key!r}")
            if archive[key].shape != shape:
                raise ValueError(f"{path!r}: {key} must have shape {shape} for sizes "
                                 f"{sizes.tolist()}, got {archive[key].shape}")
    try:
        net = cls(sizes.tolist(), activation=scalar_of("activation", "U"),
                  output=scalar_of("output", "U"), loss=scalar_of("loss", "U"),
                  l2=scalar_of("l2", "f"), bias=bias, dtype=scalar_of("dtype", "U"),
                  seed=0, backend=backend)
    except TypeError as exc:
        raise ValueError(f"{path!r}: invalid network description: {exc}") from exc
    expected = {f"W{l}": W for l, W in enumerate(net.weights)}
    if bias:
        expected.update({f"b{l}": b for l, b in enumerate(net.biases)})
    unknown = set(archive.files) - set(expected) - set(MODEL_KEYS) - set(extra_keys)
    if unknown:
        raise ValueError(f"{path!r}: unexpected entries {sorted(unknown)}")
    for key, target in expected.items():
        value = archive[key]
        if value.shape != target.shape or value.dtype != target.dtype:
            raise ValueError(f"{path!r}: {key} must have shape {target.shape} and dtype "
                             f"{target.dtype}, got {value.shape} {value.dtype}")
        if not np.isfinite(value).all():
            raise ValueError(f"{path!r}: {key} contains NaN or inf")
        target[...] = value
    return net

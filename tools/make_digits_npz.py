"""Regenerate ``fastbp/data/digits.npz`` from scikit-learn's copy of UCI digits.

This is a one-off maintenance script: scikit-learn is needed only here,
never at run time.  The output holds two arrays and no pickled objects:

``images``
    uint8, shape (1797, 8, 8), pixel counts in 0..16.
``target``
    uint8, shape (1797,), digit labels 0..9.

Usage::

    python tools/make_digits_npz.py [OUTPUT]

The array contents are reproducible; the bytes of the ``.npz`` are not
quite (the zip container records a timestamp), so compare with
``--check`` rather than with a file checksum.
"""

import argparse
import hashlib
import pathlib
import sys

import numpy as np

DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "fastbp" / "data" / "digits.npz"


def build_arrays():
    """Return ``(images, target)`` as uint8 arrays from scikit-learn."""
    from sklearn.datasets import load_digits  # imported here: build-time only

    bunch = load_digits()
    images = np.asarray(bunch.images)
    target = np.asarray(bunch.target)
    # The source stores floats; refuse to round anything that isn't an
    # exact small integer rather than silently altering the data.
    if images.shape != (1797, 8, 8) or target.shape != (1797,):
        raise SystemExit(f"unexpected shapes {images.shape}, {target.shape}")
    if not np.array_equal(images, np.rint(images)) or images.min() < 0 or images.max() > 16:
        raise SystemExit("pixel values are not integers in 0..16")
    if target.min() < 0 or target.max() > 9:
        raise SystemExit("labels are not in 0..9")
    return images.astype(np.uint8), target.astype(np.uint8)


def content_digest(images, target):
    """SHA-256 over the raw array bytes, independent of the zip container."""
    h = hashlib.sha256()
    for arr in (images, target):
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=pathlib.Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="compare OUTPUT with freshly built arrays instead of writing it")
    args = parser.parse_args(argv)

    images, target = build_arrays()
    digest = content_digest(images, target)
    if args.check:
        with np.load(args.output, allow_pickle=False) as npz:
            same = (npz["images"].dtype == np.uint8 and npz["target"].dtype == np.uint8
                    and content_digest(npz["images"], npz["target"]) == digest)
        print(f"{args.output}: {'matches' if same else 'DIFFERS'} (content sha256 {digest})")
        return 0 if same else 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, images=images, target=target)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, content sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

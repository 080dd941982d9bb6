"""Serving a trained network: ``net.predict`` against ONNX Runtime on the same model.

A 784-100-10 network (relu, softmax output, float32) is exported by
``fastbp.onnx.to_onnx`` and run by ``onnxruntime.InferenceSession.run`` followed by an
argmax, so that both sides return the same class labels. Batches of 1 and 1,000 rows.
Both use the same number of threads: fastbp's (``fastbp.get_num_threads()``, all cores
unless ``OMP_NUM_THREADS`` or ``fastbp.set_num_threads`` say otherwise) is given to ONNX
Runtime as ``intra_op_num_threads`` (``inter_op_num_threads=1``, sequential execution).

    pytest benchmarks/test_onnx_bench.py --benchmark-only
"""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

import fastbp  # noqa: E402
from fastbp.onnx import to_onnx  # noqa: E402

SIZES = [784, 100, 10]


@pytest.fixture(scope="module")
def served():
    """The network, an ONNX Runtime session on its export, and 1,000 input rows."""
    net = fastbp.Network(SIZES, activation="relu", output="softmax", loss="cross_entropy",
                         dtype="float32", seed=0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = fastbp.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(to_onnx(net).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    X = np.random.default_rng(0).random((1000, SIZES[0]), dtype=np.float32)
    # Same model, same labels.
    np.testing.assert_array_equal(session.run(None, {"X": X})[0].argmax(axis=1),
                                  net.predict(X))
    return net, session, X


@pytest.mark.parametrize("batch", [1, 1000])
@pytest.mark.parametrize("impl", ["fastbp", "onnxruntime"])
def test_predict(benchmark, served, impl, batch):
    net, session, X = served
    rows = X[:batch]
    benchmark.group = f"predict 784-100-10 relu/softmax float32, batch {batch}"
    benchmark.extra_info.update(batch=batch, threads=fastbp.get_num_threads())
    if impl == "fastbp":
        labels = benchmark(net.predict, rows)
    else:
        labels = benchmark(lambda: session.run(None, {"X": rows})[0].argmax(axis=1))
    assert labels.shape == (batch,)

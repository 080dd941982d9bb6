"""Tests for fastbp.onnx: the exported graphs run under ONNX Runtime and give what
``net.forward`` gives; the estimators convert through skl2onnx; ``fastbp export``.

onnx, onnxruntime and skl2onnx are in the ``test`` extra; without onnxruntime (no wheel
for some platforms) the whole module is skipped, saying so.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed "
                                                "(pip install onnxruntime, or fastbp[test])")
import onnx  # noqa: E402

import fastbp  # noqa: E402
from fastbp import Network  # noqa: E402
from fastbp._validation import ACTIVATIONS  # noqa: E402
from fastbp.cli import main  # noqa: E402
from fastbp.losses import OUTPUTS  # noqa: E402
from fastbp.onnx import DEFAULT_OPSET, MIN_OPSET, to_onnx  # noqa: E402

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
# The tolerances: float32 to 1e-5, float64 to 1e-12 (relative, with the same
# absolute floor for outputs near 0).
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def random_network(activation, output, bias, dtype, sizes=(5, 8, 6, 4), seed=0):
    # init_scale 1: pre-activations of order 1 to 10, so that every activation's
    # saturating and negative regions are reached.
    return Network(list(sizes), activation=activation, output=output, bias=bias, dtype=dtype,
                   init="normal", init_scale=1.0, seed=seed)


@pytest.fixture
def X(rng):
    return rng.normal(0, 2, (37, 5))


# ----- Network -> ONNX ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnx_runtime_gives_forward(activation, output, bias, dtype, X):
    net = random_network(activation, output, bias, dtype)
    sess = session(to_onnx(net))
    X = X.astype(dtype)
    for rows in (X, X[:1]):  # the batch dimension is dynamic
        got = sess.run(None, {"X": rows})[0]
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, net.forward(rows), **TOL[dtype])
    if output in ("leaky_relu", "identity", "tanh"):
        assert (net.forward(X) < 0).any()  # the data reach the negative side


@pytest.mark.parametrize("opset", [MIN_OPSET, DEFAULT_OPSET, 21])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_opsets(opset, dtype, X):
    net = random_network("leaky_relu", "softmax", True, dtype)
    model = to_onnx(net, opset=opset)
    assert model.opset_import[0].version == opset
    np.testing.assert_allclose(session(model).run(None, {"X": X.astype(dtype)})[0],
                               net.forward(X.astype(dtype)), **TOL[dtype])


def test_default_opset_and_one_layer(X):
    net = Network([5, 3], activation="tanh", output="sigmoid", dtype="float64", seed=0)
    model = to_onnx(net)
    assert model.opset_import[0].version == DEFAULT_OPSET
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Sigmoid"]
    np.testing.assert_allclose(session(model).run(None, {"X": X})[0], net.forward(X),
                               **TOL["float64"])


@pytest.mark.parametrize("bias", [True, False])
def test_graph_structure(bias):
    net = Network([5, 8, 3], activation="relu", output="softmax", loss="cross_entropy",
                  bias=bias, dtype="float32", seed=0)
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert [n.op_type for n in graph.node] == ["Gemm", "Relu", "Gemm", "Softmax"]
    for node in graph.node:
        if node.op_type == "Gemm":
            assert len(node.input) == (3 if bias else 2)
            assert {a.name: a.i for a in node.attribute} == {"transB": 1}
    (inp,), (out,) = graph.input, graph.output
    assert inp.name == "X" and out.name == "Y"
    for value, width in ((inp, 5), (out, 3)):
        tensor = value.type.tensor_type
        assert tensor.elem_type == onnx.TensorProto.FLOAT
        batch, features = tensor.shape.dim
        assert batch.dim_param == "N" and not batch.HasField("dim_value")
        assert features.dim_value == width
    # The weights are stored as fastbp holds them, (out, in).
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    np.testing.assert_array_equal(inits["W0"], net.weights[0])
    assert inits["W0"].shape == (8, 5)
    assert ("b0" in inits) == bias
    props = {p.key: p.value for p in model.metadata_props}
    assert props == {"sizes": "5,8,3", "activation": "relu", "output": "softmax",
                     "loss": "cross_entropy", "dtype": "float32", "bias": str(bias)}
    assert model.producer_name == "fastbp"


def test_float64_leaky_relu_avoids_missing_kernel():
    # ONNX Runtime has no double LeakyRelu: float64 networks use Mul + Max instead.
    model64 = to_onnx(random_network("leaky_relu", "identity", True, "float64"))
    model32 = to_onnx(random_network("leaky_relu", "identity", True, "float32"))
    assert "LeakyRelu" not in [n.op_type for n in model64.graph.node]
    assert "LeakyRelu" in [n.op_type for n in model32.graph.node]


def test_write_to_path(tmp_path, X):
    net = random_network("sigmoid", "softmax", True, "float32")
    before = [W.copy() for W in net.weights]
    path = tmp_path / "model.onnx"
    model = to_onnx(net, path)
    assert os.listdir(tmp_path) == ["model.onnx"]  # no temporary file left behind
    assert onnx.load(str(path)) == model
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X.astype(np.float32)})[0],
                               net.forward(X), **TOL["float32"])
    for W, W_before in zip(net.weights, before):  # the network is not modified
        np.testing.assert_array_equal(W, W_before)
    # str paths work too, and an existing file is replaced.
    to_onnx(random_network("tanh", "identity", False, "float64"), str(path))
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == \
        onnx.TensorProto.DOUBLE



def test_write_to_path_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    """As Network.save (issue 13, defect 7): reading the umask means setting it for a
    moment, during which files other threads create get the wrong mode. The file gets
    the mode a plain open() gives."""
    net = random_network("sigmoid", "softmax", True, "float32")
    umask = os.umask(0o022)
    try:
        def no_umask(mask):
            raise AssertionError(f"to_onnx called os.umask({mask:#o})")

        monkeypatch.setattr(os, "umask", no_umask)
        path = tmp_path / "model.onnx"
        to_onnx(net, path)
        monkeypatch.undo()
    finally:
        os.umask(umask)
    assert os.listdir(tmp_path) == ["model.onnx"]
    assert os.stat(path).st_mode & 0o777 == 0o644


# ----- errors --------------------------------------------------------------------------

def test_not_a_network():
    with pytest.raises(TypeError, match="net must be a fastbp.Network, got dict"):
        to_onnx({"weights": []})


@pytest.mark.parametrize("opset, error, message", [
    (12, ValueError, "opset must be between 13 and"),
    (10_000, ValueError, "got 10000"),
    (True, TypeError, "opset must be an int or None, got bool"),
    ("17", TypeError, "got str '17'"),
    (17.0, TypeError, "got float"),
])
def test_bad_opset(opset, error, message):
    with pytest.raises(error, match=message):
        to_onnx(Network([2, 2], seed=0), opset=opset)


def test_bad_path(tmp_path):
    net = Network([2, 2], seed=0)
    with pytest.raises(ValueError, match="in a folder that does not exist"):
        to_onnx(net, tmp_path / "missing" / "model.onnx")
    with pytest.raises(ValueError, match="is a folder"):
        to_onnx(net, tmp_path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        to_onnx(net, 3)
    assert os.listdir(tmp_path) == []


def test_non_finite_parameters():
    net = Network([2, 3, 2], seed=0)
    net.weights[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="layer 1 of the network has NaN or inf"):
        to_onnx(net)


def test_missing_onnx_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes "import onnx" fail
    with pytest.raises(ImportError, match=r'pip install "fastbp\[onnx\]"'):
        to_onnx(Network([2, 2], seed=0))


# ----- command line ---------------------------------------------------------------------

def test_cli_export(tmp_path, capsys, X):
    net = random_network("relu", "softmax", True, "float64")
    net.save(tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx"),
                 "--opset", "18"]) == 0
    assert "model.onnx: ONNX opset 18" in capsys.readouterr().out
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], net.forward(X), **TOL["float64"])


@pytest.mark.parametrize("args, message", [
    (["{d}/missing.npz", "{d}/model.onnx"], "No such file"),
    (["{d}/model.npz", "{d}/nowhere/model.onnx"], "in a folder that does not exist"),
    (["{d}/model.npz", "{d}/model.onnx", "--opset", "12"], "opset must be between 13"),
    (["{d}/garbage.npz", "{d}/model.onnx"], "not a readable fastbp model file"),
])
def test_cli_export_errors(tmp_path, capsys, args, message):
    Network([2, 2], seed=0).save(tmp_path / "model.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    assert main([a.format(d=tmp_path) for a in ["export", *args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastbp: error: ") and message in err
    assert not (tmp_path / "model.onnx").exists()


def test_cli_export_subprocess(tmp_path):
    Network([3, 2], seed=0).save(tmp_path / "model.npz")
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    result = subprocess.run(
        [sys.executable, "-m", "fastbp", "export", "model.npz", "model.onnx"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    onnx.checker.check_model(onnx.load(str(tmp_path / "model.onnx")))
    missing = subprocess.run(
        [sys.executable, "-m", "fastbp", "export", "model.npz"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode == 2 and "output" in missing.stderr


# ----- scikit-learn estimators through skl2onnx -------------------------------------------

@pytest.fixture(scope="module")
def sk():
    """fastbp.sklearn and skl2onnx (imported in this order: the import hook registers)."""
    import fastbp.sklearn  # noqa: I001  (first: skl2onnx's import then runs the hook)
    import skl2onnx

    return fastbp.sklearn, skl2onnx


def classification_data(rng, n=120, labels=("cat", "dog", "emu")):
    X = rng.normal(0, 1, (n, 4))
    y = np.asarray(labels)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
                           if len(labels) == 3 else (X[:, 0] > 0).astype(int)]
    return X, y


def fit_quietly(estimator, X, y):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        return estimator.fit(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("labels", [("cat", "dog", "emu"), (3, 7, 11), ("no", "yes"), (0, 1)])
def test_classifier_labels_and_probabilities(sk, rng, dtype, labels):
    fastbp_sklearn, skl2onnx = sk
    X, y = classification_data(rng, labels=labels)
    X = X.astype(dtype)
    clf = fit_quietly(fastbp_sklearn.MLPClassifier(hidden_layer_sizes=(8,), max_iter=50,
                                                   random_state=0), X, y)
    model = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    label, proba = session(model).run(None, {"X": X})
    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X),
                               **TOL["float32" if dtype == np.float32 else "float64"])


def test_classifier_outputs_match_scikit_learns_converter(sk, rng):
    """Names, types and shapes of the outputs are those of scikit-learn's MLPClassifier,
    with every zipmap option; with the same parameters, so are the values."""
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    fastbp_sklearn, skl2onnx = sk
    X, y = classification_data(rng)
    ours = fit_quietly(fastbp_sklearn.MLPClassifier(hidden_layer_sizes=(6,), max_iter=20,
                                                    random_state=0), X, y)
    theirs = fit_quietly(SkMLPClassifier(hidden_layer_sizes=(6,), max_iter=20,
                                         random_state=0), X, y)
    theirs.coefs_ = [np.array(c) for c in ours.coefs_]
    theirs.intercepts_ = [np.array(b) for b in ours.intercepts_]
    for options in ({}, {"zipmap": False}, {"zipmap": "columns"},
                    {"zipmap": False, "output_class_labels": True}):
        sessions = [session(skl2onnx.to_onnx(est, X[:1].astype(np.float32), options=options))
                    for est in (ours, theirs)]
        signatures = [[(o.name, o.type, o.shape) for o in s.get_outputs()] for s in sessions]
        assert signatures[0] == signatures[1], options
        results = [s.run(None, {"X": X.astype(np.float32)}) for s in sessions]
        for a, b in zip(*results):
            if isinstance(a, list):  # ZipMap: a list of {label: probability}
                assert a == b
            else:
                np.testing.assert_array_equal(a, b)


def test_classifier_zipmap(sk, rng):
    fastbp_sklearn, skl2onnx = sk
    X, y = classification_data(rng)
    clf = fit_quietly(fastbp_sklearn.MLPClassifier(hidden_layer_sizes=(5,), max_iter=30,
                                                   random_state=0), X, y)
    # ZipMap takes float32 only: with float64 input, scikit-learn's own MLPClassifier
    # converts to a graph ONNX Runtime rejects too, unless zipmap=False.
    X = X.astype(np.float32)
    label, zipped = session(skl2onnx.to_onnx(clf, X[:1])).run(None, {"X": X})
    np.testing.assert_array_equal(label, clf.predict(X))
    proba = clf.predict_proba(X)
    assert [sorted(row) for row in zipped] == [list(clf.classes_)] * len(X)
    got = np.array([[row[c] for c in clf.classes_] for row in zipped])
    np.testing.assert_allclose(got, proba, rtol=1e-5, atol=1e-6)  # ZipMap holds float32


def test_classifier_multilabel(sk, rng):
    fastbp_sklearn, skl2onnx = sk
    X = rng.normal(0, 1, (150, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0], axis=1).astype(int)
    clf = fit_quietly(fastbp_sklearn.MLPClassifier(hidden_layer_sizes=(10,), max_iter=80,
                                                   random_state=0), X, Y)
    # float32 input: ONNX Runtime has no double Binarizer, which skl2onnx's converter
    # (scikit-learn's MLPClassifier's too) uses for multi-label outputs.
    X = X.astype(np.float32)
    label, proba = session(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})).run(
        None, {"X": X})
    assert label.shape == Y.shape
    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), **TOL["float32"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_regressor(sk, rng, dtype, n_outputs, activation):
    fastbp_sklearn, skl2onnx = sk
    X = rng.normal(0, 1, (80, 4)).astype(dtype)
    Y = X @ rng.normal(0, 1, (4, n_outputs)) + 0.1 * rng.normal(0, 1, (80, n_outputs))
    y = Y[:, 0] if n_outputs == 1 else Y
    reg = fit_quietly(fastbp_sklearn.MLPRegressor(hidden_layer_sizes=(7, 5),
                                                  activation=activation, max_iter=40,
                                                  random_state=0), X, y)
    (out,) = session(skl2onnx.to_onnx(reg, X[:1])).run(None, {"X": X})
    assert out.shape == (80, n_outputs) and out.dtype == dtype
    np.testing.assert_allclose(out.reshape(reg.predict(X).shape), reg.predict(X),
                               **TOL[np.dtype(dtype).name])


def test_pipeline(sk, rng):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fastbp_sklearn, skl2onnx = sk
    X, y = classification_data(rng)
    X = X * 10 + 3
    pipe = fit_quietly(make_pipeline(StandardScaler(), fastbp_sklearn.MLPClassifier(
        hidden_layer_sizes=(6,), max_iter=30, random_state=0)), X, y)
    label, proba = session(skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})).run(
        None, {"X": X})
    np.testing.assert_array_equal(label, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-9, atol=1e-12)


CONVERT = """
import sys
import numpy as np
{imports}
assert {skl2onnx_imported_first} or "skl2onnx" not in sys.modules, "imported skl2onnx"
assert {skl2onnx_imported_first} or "onnx" not in sys.modules, "imported onnx"
import skl2onnx
X = np.random.default_rng(0).normal(size=(30, 3))
clf = fastbp.sklearn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X, X[:, 0] > 0)
reg = fastbp.sklearn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5).fit(X, X[:, 1])
print(len(skl2onnx.to_onnx(clf, X[:1]).graph.node), len(skl2onnx.to_onnx(reg, X[:1]).graph.node))
"""


@pytest.mark.parametrize("skl2onnx_first", [False, True])
def test_registration_in_either_import_order(skl2onnx_first, tmp_path):
    """After import fastbp.sklearn, skl2onnx converts its estimators whichever of the
    two is imported first; fastbp.sklearn alone imports neither skl2onnx nor onnx."""
    imports = ("import skl2onnx\nimport fastbp.sklearn" if skl2onnx_first
               else "import fastbp.sklearn")
    code = CONVERT.format(imports=imports, skl2onnx_imported_first=skl2onnx_first)
    # cwd: not the repository's root, whose unbuilt fastbp/ would shadow an installed one.
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=PACKAGE_PARENT),
                            capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert all(int(n) > 0 for n in result.stdout.split())


def test_failed_registration_warns_instead_of_breaking_skl2onnx(sk, monkeypatch):
    import fastbp.onnx

    fastbp_sklearn, _ = sk

    def incompatible(*classes):
        raise AttributeError("skl2onnx has no update_registered_converter")

    monkeypatch.setattr(fastbp.onnx, "register_skl2onnx_converters", incompatible)
    with pytest.warns(RuntimeWarning, match="could not register its skl2onnx converters"):
        fastbp_sklearn._register_onnx_converters()

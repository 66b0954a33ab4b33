"""onnxruntime sessions: provider choice (auto / cpu / cuda[:N]) and thread settings.

onnxruntime-gpu *lists* CUDAExecutionProvider even where CUDA cannot load (no GPU, no
CUDA/cuDNN libraries); asking for it then prints a red error and silently falls back to
CPU. So CUDA is probed once per process with a one-node model and ORT's logging muted,
and the answer is cached: "auto" picks CUDA only when it really loads, "cuda" raises
DeviceError when it does not.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from labcolor.core.errors import DeviceError, ModelError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES_HELP = "auto, cpu, cuda or cuda:N"

_ORT_ERROR = 3  # ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
_ORT_FATAL = 4
_ORT_DEFAULT = 2

_probe_lock = threading.Lock()
_cuda_probe: dict[int, str | None] = {}  # device id -> None if CUDA loads there, else why not
_told_fallback = threading.Event()  # the auto -> CPU fallback is logged once per process


@dataclass(frozen=True)
class DeviceRequest:
    kind: str  # "auto" | "cpu" | "cuda"
    device_id: int = 0


def parse_device(device: str) -> DeviceRequest:
    """"auto", "cpu", "cuda", "cuda:1" (case-insensitive) -> DeviceRequest; anything else -> DeviceError."""
    text = device.strip().lower()
    if text in ("auto", "cpu", "cuda"):
        return DeviceRequest(text)
    if text.startswith("cuda:") and text[5:].isdigit():
        return DeviceRequest("cuda", int(text[5:]))
    raise DeviceError(f"unknown device {device!r}; use {DEVICES_HELP}")


def _probe_model() -> bytes:
    """A serialized one-node ONNX model (Identity on a float tensor), built without the onnx package.

    Hand-encoded protobuf: ModelProto{ir_version 7, opset 13, graph{node Identity x->y, input x, output y}}.
    """

    def field(num: int, payload: bytes) -> bytes:  # length-delimited field
        return _varint(num << 3 | 2) + _varint(len(payload)) + payload

    def varint_field(num: int, value: int) -> bytes:
        return _varint(num << 3) + _varint(value)

    tensor_type = field(1, varint_field(1, 1))  # TypeProto.tensor_type{elem_type FLOAT}
    value_info = lambda name: field(1, name) + field(2, tensor_type)  # ValueInfoProto{name, type}
    node = field(1, b"x") + field(2, b"y") + field(4, b"Identity")  # NodeProto{input, output, op_type}
    graph = field(1, node) + field(2, b"probe") + field(11, value_info(b"x")) + field(12, value_info(b"y"))
    opset = field(1, b"") + varint_field(2, 13)  # OperatorSetIdProto{domain "", version 13}
    return varint_field(1, 7) + field(7, graph) + field(8, opset)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def cuda_unavailable_reason(device_id: int = 0) -> str | None:
    """None when onnxruntime's CUDA provider really loads on `device_id`, else a one-line reason (cached)."""
    with _probe_lock:
        if device_id in _cuda_probe:
            return _cuda_probe[device_id]
        if CUDA not in ort.get_available_providers():
            reason = f"this onnxruntime build ({ort.__version__}) has no CUDA provider; install onnxruntime-gpu"
        else:
            verbose = log.isEnabledFor(logging.DEBUG)
            # ORT reports a failed CUDA load through its default logger at ERROR level; mute it unless debugging.
            ort.set_default_logger_severity(_ORT_DEFAULT if verbose else _ORT_FATAL)
            try:
                options = ort.SessionOptions()
                options.log_severity_level = _ORT_DEFAULT if verbose else _ORT_FATAL
                session = ort.InferenceSession(
                    _probe_model(), options, providers=[(CUDA, {"device_id": device_id}), CPU]
                )
                loaded = CUDA in session.get_providers()
            except Exception as exc:  # noqa: BLE001 - any failure here means "no CUDA", with its reason
                loaded, detail = False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            else:
                detail = ""
            finally:
                ort.set_default_logger_severity(_ORT_ERROR)
            reason = None if loaded else (
                f"onnxruntime's CUDA provider could not be loaded on device {device_id} "
                f"(no NVIDIA GPU/driver, or the CUDA/cuDNN libraries onnxruntime {ort.__version__} needs are missing"
                + (f": {detail}" if detail else "; onnxruntime's own message is above" if verbose
                   else "; run with -v for onnxruntime's own message") + ")"
            )
        _cuda_probe[device_id] = reason
        return reason


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """CPU-friendly options: `threads` intra-op threads (None/0: ORT's default, one per core)."""
    options = ort.SessionOptions()
    options.log_severity_level = _ORT_ERROR  # no "nodes not assigned to the preferred provider" warnings
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    # Idle intra-op threads would spin-wait between ops, stealing the cores our own decode/encode
    # threads (and other programs) need; convolutions are long enough that waking costs nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def create_session(model_path: Path, device: str = "auto", threads: int | None = None) -> ort.InferenceSession:
    """An InferenceSession on the requested device; falls back from auto to CPU with a logged reason."""
    request = parse_device(device)
    providers: list = [CPU]
    if request.kind in ("auto", "cuda"):
        reason = cuda_unavailable_reason(request.device_id)
        if reason is None:
            providers = [(CUDA, {"device_id": request.device_id}), CPU]
        elif request.kind == "cuda":
            raise DeviceError(f"device {device!r} cannot be used: {reason}. Use --device cpu (or auto).")
        elif not _told_fallback.is_set():
            _told_fallback.set()
            # A warning, once per process: someone with a GPU should learn it is not being used;
            # --device cpu says "CPU on purpose" and silences it.
            log.warning("CUDA is not usable here; running on CPU (pass --device cpu to skip this check)")
            log.debug("why not CUDA: %s", reason)
    ort.set_default_logger_severity(_ORT_ERROR)
    try:
        session = ort.InferenceSession(str(model_path), session_options(threads), providers=providers)
    except Exception as exc:  # ORT raises several undocumented types for a bad file
        raise ModelError(f"{model_path}: onnxruntime cannot load this model ({str(exc).strip()})") from exc
    if request.kind == "cuda" and CUDA not in session.get_providers():
        raise DeviceError(f"device {device!r} cannot be used: the CUDA provider did not load for {model_path}")
    return session


def session_device(session: ort.InferenceSession) -> str:
    """"cuda" or "cpu": where the session actually runs."""
    return "cuda" if CUDA in session.get_providers() else "cpu"

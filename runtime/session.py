"""onnxruntime sessions: the one place labcolor creates an InferenceSession.

`open_session` makes every session (the runtime's, the exporter's parity checks, `colorize
info`'s inspection and provider probe): a model file or the bytes of one, an explicit provider
list, threads, log severity, and optionally total quiet. `create_session` adds the user-facing
device choice (auto / cpu / cuda[:N]) on top of it.

onnxruntime-gpu *lists* CUDAExecutionProvider even where CUDA cannot load (no GPU, no
CUDA/cuDNN libraries); asking for it then prints a red error and silently falls back to
CPU. So CUDA is probed once per process with a one-node model and ORT's logging muted,
and the answer is cached: "auto" picks CUDA only when it really loads, "cuda" raises
DeviceError when it does not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from labcolor.core.errors import DeviceError, ModelError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES_HELP = "auto, cpu, cuda or cuda:N"

_ORT_ERROR = 3  # ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
_ORT_FATAL = 4
_ORT_DEFAULT = 2

# An execution provider as onnxruntime takes it: a name, or (name, provider options).
Provider = str | tuple[str, dict[str, Any]]

_probe_lock = threading.Lock()
_cuda_probe: dict[int, str | None] = {}  # device id -> None if CUDA loads there, else why not


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
            try:
                session = open_session(_probe_model(), [(CUDA, {"device_id": device_id}), CPU],
                                       log_severity=_ORT_DEFAULT if verbose else _ORT_FATAL)
                loaded = CUDA in session.get_providers()
            except ModelError as exc:  # any failure here means "no CUDA", with onnxruntime's reason
                cause = exc.__cause__ or exc
                loaded = False
                detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            else:
                detail = ""
            reason = None if loaded else (
                f"onnxruntime's CUDA provider could not be loaded on device {device_id} "
                f"(no NVIDIA GPU/driver, or the CUDA/cuDNN libraries onnxruntime {ort.__version__} needs are missing"
                + (f": {detail}" if detail else "; onnxruntime's own message is above" if verbose
                   else "; run with -v for onnxruntime's own message") + ")"
            )
        _cuda_probe[device_id] = reason
        return reason


def session_options(threads: int | None = None, log_severity: int = _ORT_ERROR) -> ort.SessionOptions:
    """CPU-friendly options: `threads` intra-op threads (None/0: ORT's default, one per core)."""
    options = ort.SessionOptions()
    options.log_severity_level = log_severity  # default: no "nodes not assigned to the preferred provider" warnings
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    # Idle intra-op threads would spin-wait between ops, stealing the cores our own decode/encode
    # threads (and other programs) need; convolutions are long enough that waking costs nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def create_session(model: Path | bytes, device: str = "auto", threads: int | None = None) -> ort.InferenceSession:
    """An InferenceSession on the requested device; falls back from auto to CPU with a logged reason."""
    request = parse_device(device)
    providers: list[Provider] = [CPU]
    if request.kind in ("auto", "cuda"):
        reason = cuda_unavailable_reason(request.device_id)
        if reason is None:
            providers = [(CUDA, {"device_id": request.device_id}), CPU]
        elif request.kind == "cuda":
            raise DeviceError(f"device {device!r} cannot be used: {reason}. Use --device cpu (or auto).")
        else:
            # Only "auto" gets here: the user asked for nothing, so falling back to CPU is not news (the CPU
            # build, or a GPU build on a machine without a usable GPU). --verbose tells why; `colorize info`
            # lists the providers; --device cuda turns it into an error.
            log.debug("running on CPU: %s", reason)
    session = open_session(model, providers, threads=threads)
    if request.kind == "cuda" and CUDA not in session.get_providers():
        raise DeviceError(f"device {device!r} cannot be used: the CUDA provider did not load for {_name(model)}")
    return session


def open_session(
    model: Path | bytes,
    providers: Sequence[Provider],
    *,
    threads: int | None = None,
    log_severity: int = _ORT_ERROR,
    quiet: bool = False,
) -> ort.InferenceSession:
    """The one place an InferenceSession is made: from a model file or its bytes, with exactly `providers`.

    No device logic here: create_session chooses providers for users; the exporter's checks and
    `colorize info`'s provider probe name their own. `log_severity` applies to the session's log
    and, while it is created, to onnxruntime's default logger (which reports provider load
    failures); afterwards that logger is left at ERROR. `quiet`: nothing at all on the terminal
    (fatal-only logs, and onnxruntime's Python-level "Falling back to CPU" banner swallowed), for
    callers that probe whether a model or provider loads and report the reason themselves.
    Raises ModelError, caused by onnxruntime's own exception, when the model does not load.
    """
    severity = _ORT_FATAL if quiet else log_severity
    source = model if isinstance(model, bytes) else str(model)
    ort.set_default_logger_severity(severity)
    try:
        with quiet_onnxruntime() if quiet else contextlib.nullcontext():
            return ort.InferenceSession(source, session_options(threads, severity), providers=list(providers))
    except Exception as exc:  # ORT raises several undocumented types for a bad file
        raise ModelError(f"{_name(model)}: onnxruntime cannot load this model ({str(exc).strip()})") from exc
    finally:
        ort.set_default_logger_severity(_ORT_ERROR)


@contextlib.contextmanager
def quiet_onnxruntime() -> Iterator[None]:
    """Nothing from onnxruntime on the terminal while inside: its C++ default logger at FATAL, and Python's
    stdout/stderr swallowed (ORT prints its provider-fallback banner with print()). Only for short probes
    whose failures the caller reports itself: the redirection is process-wide while it lasts."""
    ort.set_default_logger_severity(_ORT_FATAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(_ORT_ERROR)


def _name(model: Path | bytes) -> str:
    """How messages name a model: its path, or "the model" for one given as bytes."""
    return "the model" if isinstance(model, bytes) else str(model)


def session_device(session: ort.InferenceSession) -> str:
    """"cuda" or "cpu": where the session actually runs."""
    return "cuda" if CUDA in session.get_providers() else "cpu"

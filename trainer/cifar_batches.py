"""CIFAR-10 batch files (python version): their format, and reading them safely.

The batches are pickles, and pickles can run arbitrary code when loaded, so they are read with
a restricted unpickler that resolves only the handful of numpy globals an array pickle needs
(see ``_allowed_globals``); any other global is refused *before* anything is called, so a
booby-trapped file cannot run code. What it returns is then checked field by field.

File format (exactly what the official files contain)
-----------------------------------------------------
Each batch is a protocol-2 pickle of a dict with *bytes* keys:

* ``b"batch_label"``: bytes, e.g. ``b"training batch 1 of 5"``;
* ``b"labels"``: list of int in 0..9;
* ``b"data"``: uint8 array (N, 3072); a row is the 1024 red values, then 1024 green, then
  1024 blue, each plane a row-major 32x32 image;
* ``b"filenames"``: list of bytes.

``batches.meta`` holds ``b"label_names"`` (list of bytes), ``b"num_cases_per_batch"`` and
``b"num_vis"`` (3072). The official files were pickled by Python 2 + numpy 1.x, hence
``encoding="bytes"`` when loading and the ``numpy.core`` (not ``numpy._core``) globals.
The names below are the one definition of the layout: the loader (trainer.cifar) and the
writer (scripts/make_cifar_from_photos.py) both use them.
"""

from __future__ import annotations

import pickle
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from labcolor.core.errors import InputError

__all__ = [
    "FOLDER_NAME",
    "IMAGE_SIZE",
    "META_NAME",
    "NUM_CLASSES",
    "NUM_TRAIN_BATCHES",
    "NUM_VIS",
    "TEST_BATCH_NAME",
    "TRAIN_BATCH_PREFIX",
    "TRAIN_BATCH_RE",
    "CifarError",
    "read_batch",
    "read_batch_arrays",
    "read_label_names",
]

FOLDER_NAME = "cifar-10-batches-py"
META_NAME = "batches.meta"
TEST_BATCH_NAME = "test_batch"
TRAIN_BATCH_PREFIX = "data_batch_"
TRAIN_BATCH_RE = re.compile(r"data_batch_([1-9][0-9]*)")
NUM_TRAIN_BATCHES = 5  # the official dataset; the photo script may write a different count
NUM_CLASSES = 10
IMAGE_SIZE = 32
NUM_VIS = 3 * IMAGE_SIZE * IMAGE_SIZE  # 3072 values per image: the R, G and B planes


class CifarError(InputError):
    """A CIFAR-10 file is corrupt, malformed or unsafe; the message names the file and the problem."""


# --------------------------------------------------------------------------- restricted unpickling


class _Latin1Encode:
    """Stand-in for ``_codecs.encode`` limited to what protocol-2 pickles of bytes use.

    Python 3 writes ``bytes`` at protocol 2 as ``_codecs.encode(<latin-1 text>, "latin1")``.
    ``_codecs.encode`` itself accepts any codec name, so rather than exposing it we accept
    exactly that one shape of call. It is an instance with no attribute storage
    (``__slots__ = ()``), not a function, because a pickle's BUILD opcode can set attributes
    on anything it holds a reference to, and these objects are shared by every load.
    """

    __slots__ = ()

    def __call__(self, text: object, encoding: object = None) -> bytes:
        if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError(
                f"_codecs.encode called with unexpected arguments ({type(text).__name__}, {encoding!r})"
            )
        return text.encode("latin-1")


class _EmptyBytes:
    """Stand-in for ``bytes``: protocol 2 writes ``b""`` as ``bytes()``; nothing else is allowed.

    Accepting arguments would let a pickle call ``bytes(10**12)`` and exhaust memory.
    """

    __slots__ = ()

    def __call__(self, *args: object) -> bytes:
        if args:
            raise pickle.UnpicklingError("bytes() may only be called without arguments")
        return b""


@lru_cache(maxsize=1)
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The complete allow-list: (module, name) as written in the pickle -> the object to use.

    The objects are taken from numpy's own pickling (``__reduce__``) instead of imported by
    dotted name: numpy 2 moved ``numpy.core`` to ``numpy._core`` (and deprecated the old
    path), numpy 1.x only has the old one, and both spellings occur in real files.
    """
    reconstruct = np.empty(0, dtype=np.uint8).__reduce__()[0]
    scalar = np.uint8(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _Latin1Encode(),
        # Python 3 maps this to "__builtin__" when writing protocol 2 (fix_imports).
        ("builtins", "bytes"): _EmptyBytes(),
        ("__builtin__", "bytes"): _EmptyBytes(),
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can only build dicts, lists, numbers, bytes and numpy arrays.

    Every way a pickle names a callable (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*) goes through
    ``find_class``, so refusing there means no foreign code can ever be reached.
    """

    def __init__(self, file: BinaryIO, source: Path) -> None:
        # encoding="bytes": Python 2 ``str`` objects (keys, raw array data) stay bytes.
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise CifarError(
                f"{self._source}: refuses to load global {module}.{name}: not a CIFAR-10 batch"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise CifarError(f"{self._source}: refuses persistent id {pid!r}: not a CIFAR-10 batch")


def _load_pickle(path: Path) -> dict[str, Any]:
    """Restricted-unpickle ``path`` and return its dict with keys normalized to str."""
    path = Path(path)
    if not path.is_file():
        raise CifarError(f"{path}: missing CIFAR-10 file")
    try:
        with path.open("rb") as f:
            obj = _RestrictedUnpickler(f, path).load()
    except CifarError:
        raise
    except Exception as exc:  # any failure of a hostile/corrupt pickle is a data error
        raise CifarError(f"{path}: not a readable CIFAR-10 pickle ({type(exc).__name__}: {exc})") from exc

    if not isinstance(obj, dict):
        raise CifarError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    normalized: dict[str, Any] = {}
    for key, value in obj.items():
        # The official files have bytes keys (Python 2 str); pickles written by Python 3
        # code may use str. Both mean the same field.
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        elif not isinstance(key, str):
            raise CifarError(f"{path}: dict key {key!r} is not bytes or str")
        if key in normalized:
            raise CifarError(f"{path}: key {key!r} appears twice (as bytes and as str)")
        normalized[key] = value
    return normalized


def _labels_array(path: Path, labels: object) -> np.ndarray:
    """Validate a labels field (list of int or 1-D integer array) and return it as int64."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise CifarError(f"{path}: 'labels' must be a 1-D integer array, got dtype {labels.dtype} shape {labels.shape}")
        array = labels.astype(np.int64)
    elif isinstance(labels, (list, tuple)):
        for index, value in enumerate(labels):
            # bool is an int subclass, but a True/False label means the file is wrong.
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise CifarError(f"{path}: 'labels'[{index}] is {value!r}, expected an int")
        array = np.asarray(labels, dtype=np.int64).reshape(-1)
    else:
        raise CifarError(f"{path}: 'labels' must be a list of int, got {type(labels).__name__}")
    bad = np.flatnonzero((array < 0) | (array >= NUM_CLASSES))
    if bad.size:
        first = int(bad[0])
        raise CifarError(
            f"{path}: label {int(array[first])} at index {first} is out of range 0..{NUM_CLASSES - 1}"
        )
    return array


def _read_checked(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The batch dict (str keys) after validation, and its labels as int64."""
    path = Path(path)
    batch = _load_pickle(path)
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise CifarError(f"{path}: missing required key(s) {', '.join(missing)}; has {sorted(batch)}")
    data = batch["data"]
    if not isinstance(data, np.ndarray):
        raise CifarError(f"{path}: 'data' must be a numpy array, got {type(data).__name__}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != NUM_VIS:
        raise CifarError(
            f"{path}: 'data' must be uint8 with shape (N, {NUM_VIS}), got {data.dtype} with shape {data.shape}"
        )
    labels = _labels_array(path, batch["labels"])
    if labels.shape[0] != data.shape[0]:
        raise CifarError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return batch, labels


def read_batch(path: Path) -> dict[str, object]:
    """Read one CIFAR-10 batch file safely and validate its structure.

    Returns the pickled dict with str keys (``"data"``, ``"labels"``, and whatever else the
    file has, e.g. ``"batch_label"``, ``"filenames"``); values are as stored.
    Raises CifarError naming the file for unsafe, unreadable or malformed content.
    """
    return _read_checked(path)[0]


def read_batch_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 rows (N, 3072), int64 labels (N,)), validated like ``read_batch``."""
    batch, labels = _read_checked(path)
    return batch["data"], labels


def read_label_names(path: Path) -> list[str]:
    """Read and validate ``batches.meta``; return the label names as str."""
    meta = _load_pickle(path)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)):
        raise CifarError(f"{path}: missing or invalid 'label_names' (expected a list of {NUM_CLASSES} names)")
    if len(names) != NUM_CLASSES:
        raise CifarError(f"{path}: expected {NUM_CLASSES} label names, got {len(names)}")
    decoded: list[str] = []
    for name in names:
        if isinstance(name, bytes):
            try:
                name = name.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CifarError(f"{path}: label name {name!r} is not UTF-8") from exc
        if not isinstance(name, str) or not name:
            raise CifarError(f"{path}: label name {name!r} is not a non-empty string")
        decoded.append(name)
    num_vis = meta.get("num_vis", NUM_VIS)
    if num_vis != NUM_VIS:
        raise CifarError(f"{path}: 'num_vis' is {num_vis!r}, expected {NUM_VIS} (32x32 RGB)")
    return decoded

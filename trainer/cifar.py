"""CIFAR-10 (python version): safe download, safe extraction, safe loading, and writing.

The official CIFAR-10 "python version" is a tar.gz of pickles. Pickles can run arbitrary
code when loaded, and tar archives can write outside the folder they are extracted into,
so this module never trusts either:

* batches are read with a restricted unpickler that resolves only the handful of numpy
  globals an array pickle needs (see ``_allowed_globals``); any other global is refused
  *before* anything is called, so a booby-trapped file cannot run code;
* archives are checked member by member (only regular files and directories whose paths
  stay inside the destination) before a single byte is written, and on Python versions
  that have it tarfile's own ``"data"`` filter is applied as well;
* downloads stream into a temporary file in the target folder and are renamed into place
  only after the MD5 matches, so an interrupted or corrupt download never sits at the
  final name.

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
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO, Literal

import numpy as np
from labcolor.core.errors import InputError

__all__ = [
    "ARCHIVE_NAME",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "FOLDER_NAME",
    "CifarError",
    "CifarSplit",
    "download_cifar10",
    "is_cifar10",
    "load_cifar10",
    "read_batch",
    "safe_extract",
    "write_cifar10",
]

logger = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"

META_NAME = "batches.meta"
TEST_BATCH_NAME = "test_batch"
TRAIN_BATCH_PREFIX = "data_batch_"
NUM_TRAIN_BATCHES = 5  # the official dataset; write_cifar10 may write a different count
NUM_CLASSES = 10
IMAGE_SIZE = 32
NUM_VIS = 3 * IMAGE_SIZE * IMAGE_SIZE  # 3072 values per image: the R, G and B planes

# Big enough that per-chunk overhead (hashing, progress callback) is negligible, small
# enough that progress updates stay frequent on slow links. Module-level so tests can
# shrink it to exercise multi-chunk downloads with a tiny fixture.
_CHUNK_SIZE = 1 << 20

_TRAIN_BATCH_RE = re.compile(r"data_batch_([1-9][0-9]*)")
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")


class CifarError(InputError):
    """A CIFAR-10 file is corrupt, malformed or unsafe; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)  # eq=False: a generated __eq__ would compare arrays ambiguously
class CifarSplit:
    """One split of CIFAR-10, ready for training code."""

    images: np.ndarray  # uint8, (N, 32, 32, 3), RGB, channels-last
    labels: np.ndarray  # int64, (N,)
    label_names: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


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
    except Exception as exc:  # noqa: BLE001 - any failure of a hostile/corrupt pickle is a data error
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


def read_batch(path: Path) -> dict[str, object]:
    """Read one CIFAR-10 batch file safely and validate its structure.

    Returns the pickled dict with str keys (``"data"``, ``"labels"``, and whatever else the
    file has, e.g. ``"batch_label"``, ``"filenames"``); values are as stored.
    Raises CifarError naming the file for unsafe, unreadable or malformed content.
    """
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
    return batch


def _read_label_names(path: Path) -> list[str]:
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


# --------------------------------------------------------------------------- locating / extracting


def _has_any_batch_file(folder: Path) -> bool:
    return (
        (folder / META_NAME).exists()
        or (folder / TEST_BATCH_NAME).exists()
        or any(_TRAIN_BATCH_RE.fullmatch(p.name) for p in folder.glob(TRAIN_BATCH_PREFIX + "*"))
    )


def _is_batches_folder(folder: Path) -> bool:
    # A cheap name check (no unpickling): enough to tell a dataset folder from anything else.
    return all((folder / name).is_file() for name in (META_NAME, TEST_BATCH_NAME, TRAIN_BATCH_PREFIX + "1"))


def _is_cifar_archive(path: Path) -> bool:
    """True if ``path`` is a tar archive whose first member lives under FOLDER_NAME.

    Only the first header is read, so this stays cheap even for the 163 MB archive.
    """
    try:
        with tarfile.open(path, "r:*") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return False
    if first is None:
        return False
    parts = [part for part in PurePosixPath(first.name).parts if part != "."]
    return parts[:1] == [FOLDER_NAME]


def is_cifar10(path: Path) -> bool:
    """True if ``path`` is the CIFAR-10 archive, the extracted folder, or a folder containing either.

    This is a quick structural check (file names, the archive's first header); it does not
    validate contents. ``load_cifar10`` does that.
    """
    path = Path(path)
    try:
        if path.is_file():
            return _is_cifar_archive(path)
        if path.is_dir():
            if _is_batches_folder(path) or _is_batches_folder(path / FOLDER_NAME):
                return True
            archive = path / ARCHIVE_NAME
            return archive.is_file() and _is_cifar_archive(archive)
    except OSError:  # e.g. permission denied: not something we can load either
        return False
    return False


def _refuse_member(archive: Path, member: tarfile.TarInfo, why: str) -> CifarError:
    return CifarError(f"{archive}: refusing to extract member {member.name!r}: {why}")


def _check_member(archive: Path, root: Path, member: tarfile.TarInfo) -> None:
    """Raise CifarError unless ``member`` is a plain file or directory that lands inside ``root``."""
    # Links and device nodes are refused wherever they point: CIFAR-10 has none, and a link
    # inside the archive is how later members get redirected outside the destination.
    if member.issym():
        raise _refuse_member(archive, member, f"symbolic link (to {member.linkname!r}); only files and folders are allowed")
    if member.islnk():
        raise _refuse_member(archive, member, f"hard link (to {member.linkname!r}); only files and folders are allowed")
    if not (member.isfile() or member.isdir()):
        raise _refuse_member(archive, member, "device or special file; only files and folders are allowed")
    name = member.name
    if not name or "\x00" in name:
        raise _refuse_member(archive, member, "empty or invalid name")
    # Check both path flavours: on Windows, backslashes and drive letters are separators too.
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith(("/", "\\")):
        raise _refuse_member(archive, member, "absolute path")
    if ".." in posix.parts or ".." in windows.parts:
        raise _refuse_member(archive, member, "'..' path component")
    # Final word: where the OS would really put it. resolve() follows symlinks that already
    # exist under root, so a pre-existing link in the destination cannot be used either.
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise _refuse_member(archive, member, f"resolves to {target}, outside {root}")


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a (gzipped) tar archive into ``dest``, refusing anything that could land outside it.

    Every member is checked before anything is written: only regular files and directories
    with relative, ``..``-free paths that resolve inside ``dest`` are allowed; symlinks,
    hard links and device files are refused wherever they point. Where tarfile supports it
    (3.12+, and security backports of 3.10/3.11) the ``"data"`` filter is applied on top.
    Raises CifarError naming the archive and the offending member. Returns ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    filter_error: tuple[type[BaseException], ...] = (
        (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
    )
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()  # reads the whole archive: corrupt ones fail before writing
            for member in members:
                _check_member(archive, root, member)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # pragma: no cover - only on unpatched old Pythons
                for member in members:
                    # What the data filter would do: no setuid/setgid/sticky or group/other
                    # write bits, and the owner can always read/write what we create.
                    member.mode = (member.mode & 0o755) | (0o700 if member.isdir() else 0o600)
                tar.extractall(root, members=members)
    except CifarError:
        raise
    except filter_error as exc:
        member_name = getattr(getattr(exc, "tarinfo", None), "name", "?")
        raise CifarError(f"{archive}: refusing to extract member {member_name!r}: {exc}") from exc
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise CifarError(f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc})") from exc
    except gzip.BadGzipFile as exc:
        # An OSError subclass, so caught explicitly; other OSErrors (disk full, permissions)
        # are not data problems and keep their own type.
        raise CifarError(f"{archive}: not a readable tar.gz archive ({exc})") from exc
    return dest


def _extract_once(archive: Path) -> Path:
    """Extract ``archive`` next to itself into FOLDER_NAME unless that folder already exists.

    Extraction goes into a temporary sibling folder that is renamed into place at the end,
    so an interrupted extraction never leaves a half-filled FOLDER_NAME that later calls
    would mistake for a finished one.
    """
    target = archive.parent / FOLDER_NAME
    if target.is_dir():
        return target
    if target.exists():
        raise CifarError(f"{target}: exists but is not a folder; cannot extract {archive} there")
    logger.info("extracting %s into %s", archive, target)
    staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", suffix=".extracting", dir=archive.parent))
    try:
        safe_extract(archive, staging)
        extracted = staging / FOLDER_NAME
        if not extracted.is_dir():
            raise CifarError(f"{archive}: archive has no top-level {FOLDER_NAME}/ folder")
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # not a concurrent extraction that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _resolve_folder(path: Path) -> Path:
    """Map any accepted input (archive, folder, parent folder) to the batches folder."""
    if not path.exists():
        raise FileNotFoundError(f"no CIFAR-10 data at {path}: path does not exist")
    if path.is_file():
        return _extract_once(path)
    if _has_any_batch_file(path):
        return path
    if (path / FOLDER_NAME).is_dir():
        return path / FOLDER_NAME
    if (path / ARCHIVE_NAME).is_file():
        return _extract_once(path / ARCHIVE_NAME)
    raise CifarError(
        f"{path}: no CIFAR-10 data found (expected batch files, a {FOLDER_NAME}/ folder or {ARCHIVE_NAME})"
    )


def _train_batch_files(folder: Path) -> list[Path]:
    """data_batch_1..K in numeric order, K being the highest present (5 for the official set)."""
    found = {
        int(match.group(1))
        for p in folder.glob(TRAIN_BATCH_PREFIX + "*")
        if (match := _TRAIN_BATCH_RE.fullmatch(p.name))
    }
    # Nothing found: name the official five in the error. A gap (e.g. 4 missing but 5
    # present) is reported by the caller's missing-file check.
    count = max(found, default=NUM_TRAIN_BATCHES)
    return [folder / f"{TRAIN_BATCH_PREFIX}{i}" for i in range(1, count + 1)]


def load_cifar10(path: Path, split: Literal["train", "test"] = "train") -> CifarSplit:
    """Load one split of CIFAR-10 (python version) safely.

    ``path`` is the archive, the extracted ``cifar-10-batches-py`` folder, or a folder
    containing either. An archive is extracted (with ``safe_extract``) next to itself into
    FOLDER_NAME the first time; later calls reuse that folder. ``"train"`` is
    data_batch_1..K concatenated in order (K = 5 for the official set; K is the highest
    batch present, so folders from ``write_cifar10(num_train_batches=K)`` load too, and a
    gap in the numbering is an error), ``"test"`` is test_batch.

    Raises FileNotFoundError if ``path`` does not exist and CifarError (naming the file)
    for missing, unsafe or malformed files.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _resolve_folder(Path(path))
    batch_files = _train_batch_files(folder) if split == "train" else [folder / TEST_BATCH_NAME]
    missing = [p.name for p in [folder / META_NAME, *batch_files] if not p.is_file()]
    if missing:
        raise CifarError(
            f"{folder}: missing CIFAR-10 file(s) {', '.join(missing)}"
            " (if this folder came from an interrupted extraction, delete it and load the archive again)"
        )

    label_names = _read_label_names(folder / META_NAME)
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch_path in batch_files:
        batch = read_batch(batch_path)
        rows.append(batch["data"])  # type: ignore[arg-type]  # validated by read_batch
        labels.append(_labels_array(batch_path, batch["labels"]))
    data = np.concatenate(rows) if len(rows) > 1 else rows[0]
    # Row layout is [R plane | G plane | B plane], each 32x32 row-major: (N, C, H, W) -> HWC.
    images = np.ascontiguousarray(data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1))
    return CifarSplit(images=images, labels=np.concatenate(labels), label_names=label_names)


# --------------------------------------------------------------------------- download


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # integrity check, not security
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length") if getattr(response, "headers", None) is not None else None
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _stream_to(
    url: str,
    out: BinaryIO,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
) -> str:
    """Stream ``url`` into ``out``; return the MD5 hex digest of what was written."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - caller picks the URL
    except urllib.error.HTTPError as exc:
        exc.close()  # HTTPError holds the error page's open socket
        raise CifarError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise CifarError(f"cannot download {url}: {exc}") from exc
    digest = hashlib.md5(usedforsecurity=False)
    with response:
        total = _content_length(response)
        done = 0
        if progress is not None:
            progress(0, total)
        while True:
            try:
                chunk = response.read(_CHUNK_SIZE)
            except (http.client.HTTPException, OSError) as exc:  # IncompleteRead, reset, timeout
                raise CifarError(f"download of {url} failed after {done} bytes: {exc!r}") from exc
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    if total is not None and done != total:
        raise CifarError(f"download of {url} is truncated: got {done} of {total} bytes")
    return digest.hexdigest()


def download_cifar10(
    root: Path,
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download the CIFAR-10 archive to ``root/ARCHIVE_NAME`` and verify its MD5.

    If the archive is already there with the right MD5 nothing is downloaded. Otherwise the
    body is streamed into a temporary file in ``root`` and renamed into place only once
    complete and verified, so an interrupted or corrupt download never leaves a file at the
    final name (and no temporary file is left behind either). ``progress(done, total)`` is
    called as bytes arrive; ``total`` is None when the server sends no Content-Length.
    ``timeout`` applies to connecting and to each read.

    Raises CifarError (with the URL) for network/HTTP errors, truncation or MD5 mismatch.
    Returns the archive path.
    """
    if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    expected = md5.lower()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / ARCHIVE_NAME

    if final.is_file():
        actual = _file_md5(final)
        if actual == expected:
            logger.info("%s already present with the expected MD5; not downloading", final)
            return final
        logger.warning("%s has MD5 %s, expected %s; downloading it again", final, actual, expected)

    logger.info("downloading %s to %s", url, final)
    # Same folder as the final file: os.replace is only atomic within one filesystem.
    fd, temp_name = tempfile.mkstemp(dir=root, prefix=f".{ARCHIVE_NAME}.", suffix=".part")
    temp = Path(temp_name)
    finished = False
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_to(url, out, timeout, progress)
            out.flush()
            os.fsync(out.fileno())  # the rename must not become visible before the data
        if actual != expected:
            raise CifarError(
                f"MD5 mismatch for {url}: expected {expected}, got {actual}; the download was discarded"
            )
        os.replace(temp, final)
        finished = True
    finally:
        if not finished:  # any failure, including KeyboardInterrupt or a raising progress callback
            temp.unlink(missing_ok=True)
    return final


# --------------------------------------------------------------------------- writing


def _check_images(name: str, images: object) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(images).__name__}")
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != shape:
        raise ValueError(f"{name} must be uint8 with shape (N, 32, 32, 3), got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return images


def _check_labels(name: str, labels: object, count: int) -> list[int]:
    array = np.asarray(labels)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D integer array, got dtype {array.dtype} shape {array.shape}")
    if array.shape[0] != count:
        raise ValueError(f"{name} has {array.shape[0]} labels for {count} images")
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ValueError(f"{name} must be in 0..{NUM_CLASSES - 1}, got range {array.min()}..{array.max()}")
    # Plain Python ints, as in the official files (numpy ints would pickle as numpy scalars).
    return [int(v) for v in array]


def _check_filenames(name: str, filenames: Sequence[str] | None, count: int, default_prefix: str) -> list[bytes]:
    if filenames is None:
        return [f"{default_prefix}_{i:06d}.png".encode("ascii") for i in range(count)]
    if len(filenames) != count:
        raise ValueError(f"{name} has {len(filenames)} names for {count} images")
    if not all(isinstance(n, str) and n for n in filenames):
        raise ValueError(f"{name} must be non-empty strings")
    return [n.encode("utf-8") for n in filenames]


def _planar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) RGB -> (N, 3072) rows of [R plane | G plane | B plane], C-contiguous."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(images.shape[0], NUM_VIS))


def _dump(obj: dict[bytes, Any], path: Path) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)  # protocol 2, like the official files


def write_cifar10(
    dest: Path,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    label_names: list[str],
    *,
    num_train_batches: int = 5,
    train_filenames: Sequence[str] | None = None,
    test_filenames: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``dest/cifar-10-batches-py`` in the official CIFAR-10 python format.

    Images are uint8 (N, 32, 32, 3) RGB; labels integers in 0..9; ``label_names`` has 10
    entries. The training set is split into ``num_train_batches`` files
    data_batch_1..K of (nearly) equal size, in order; ``batches.meta`` records the largest
    batch size as ``num_cases_per_batch``. Filenames default to ``train_000000.png`` etc.

    The folder is written under a temporary name and renamed into place when complete. An
    existing folder raises FileExistsError unless ``overwrite`` is true. Returns the folder.
    """
    train_images = _check_images("train_images", train_images)
    test_images = _check_images("test_images", test_images)
    train_label_list = _check_labels("train_labels", train_labels, train_images.shape[0])
    test_label_list = _check_labels("test_labels", test_labels, test_images.shape[0])
    if len(label_names) != NUM_CLASSES or not all(isinstance(n, str) and n for n in label_names):
        raise ValueError(f"label_names must be {NUM_CLASSES} non-empty strings, got {label_names!r}")
    if isinstance(num_train_batches, bool) or not isinstance(num_train_batches, int) or num_train_batches < 1:
        raise ValueError(f"num_train_batches must be a positive int, got {num_train_batches!r}")
    if num_train_batches > train_images.shape[0]:
        # Every batch gets at least one image: empty batches would be legal pickles but
        # useless files, and would make the batch count disagree with the data.
        raise ValueError(f"num_train_batches={num_train_batches} exceeds the {train_images.shape[0]} training images")
    train_names = _check_filenames("train_filenames", train_filenames, train_images.shape[0], "train")
    test_names = _check_filenames("test_filenames", test_filenames, test_images.shape[0], "test")

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    folder = dest / FOLDER_NAME
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists (pass overwrite=True to replace it)")

    staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", suffix=".writing", dir=dest))
    try:
        bounds = np.linspace(0, train_images.shape[0], num_train_batches + 1).round().astype(int)
        train_rows = _planar_rows(train_images)
        for i in range(num_train_batches):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            _dump(
                {
                    b"batch_label": f"training batch {i + 1} of {num_train_batches}".encode("ascii"),
                    b"labels": train_label_list[lo:hi],
                    b"data": np.ascontiguousarray(train_rows[lo:hi]),
                    b"filenames": train_names[lo:hi],
                },
                staging / f"{TRAIN_BATCH_PREFIX}{i + 1}",
            )
        _dump(
            {
                b"batch_label": b"testing batch 1 of 1",
                b"labels": test_label_list,
                b"data": _planar_rows(test_images),
                b"filenames": test_names,
            },
            staging / TEST_BATCH_NAME,
        )
        _dump(
            {
                b"num_cases_per_batch": int(np.diff(bounds).max()),
                b"label_names": [n.encode("utf-8") for n in label_names],
                b"num_vis": NUM_VIS,
            },
            staging / META_NAME,
        )
        if folder.exists():  # overwrite: move the old folder aside first, drop it after the swap
            old = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", suffix=".old", dir=dest))
            os.replace(folder, old / FOLDER_NAME)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote CIFAR-10 folder %s (%d train, %d test images)", folder, len(train_names), len(test_names))
    return folder

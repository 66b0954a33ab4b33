"""The CIFAR-10 archive: download it (MD5-checked), recognize it, extract it safely.

* Downloads stream into a temporary file in the target folder and are renamed into place only
  after the MD5 matches, so an interrupted or corrupt download never sits at the final name.
* Extraction uses tarfile's own ``"data"`` extraction filter (Python 3.10.12+, 3.11.4+, 3.12+)
  and refuses links on top of it (see ``_member_filter``); on a Python without the filter it
  refuses to extract at all rather than rely on a hand-written substitute.
* ``extract_once`` extracts into a temporary sibling folder and renames the batches folder
  into place, so an interrupted extraction never looks like a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import platform
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from labcolor.trainer.cifar_batches import FOLDER_NAME, CifarError

__all__ = [
    "ARCHIVE_NAME",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "download_cifar10",
    "extract_once",
    "is_cifar_archive",
    "safe_extract",
]

logger = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"

# Big enough that per-chunk overhead (hashing, progress callback) is negligible, small
# enough that progress updates stay frequent on slow links. Module-level so tests can
# shrink it to exercise multi-chunk downloads with a tiny fixture.
_CHUNK_SIZE = 1 << 20

_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")


# --------------------------------------------------------------------------- recognizing / extracting


def is_cifar_archive(path: Path) -> bool:
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


def _refused(archive: Path, member: tarfile.TarInfo, why: object) -> CifarError:
    return CifarError(f"{archive}: refusing to extract member {member.name!r}: {why}")


def _member_filter(archive: Path) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """tarfile's ``data`` filter, refusing links as well, with its errors as CifarError.

    The data filter keeps every path inside the folder it extracts into (no absolute paths:
    a leading "/" is stripped; no ".." or pre-existing symlink leading out), refuses device
    and other special files, and drops setuid bits and ownership. It allows links whose
    target stays inside that folder. We refuse links outright: CIFAR-10 archives hold only
    files and folders, and a symlink checked against the staging folder of ``extract_once``
    could point outside the batches folder once that is renamed into place. (Without
    symlinks there is also nothing for the data filter's ``realpath`` checks to be fooled by.)
    """

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        if member.issym() or member.islnk():
            kind = "symbolic" if member.issym() else "hard"
            raise _refused(archive, member, f"{kind} link (to {member.linkname!r}); only files and folders are allowed")
        try:
            return tarfile.data_filter(member, dest)
        except tarfile.FilterError as exc:  # AbsolutePathError, OutsideDestinationError, SpecialFileError, ...
            raise _refused(archive, member, exc) from exc

    return check


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a (gzipped) tar archive into ``dest`` through tarfile's ``data`` filter, links refused.

    Every member is checked before anything is written, so a refused archive leaves ``dest``
    as it was. Raises CifarError naming the archive and the member it refuses, or naming the
    archive when it is unreadable, or when this Python's tarfile has no extraction filters
    (before 3.10.12 / 3.11.4). Returns ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if not hasattr(tarfile, "data_filter"):
        raise CifarError(
            f"{archive}: this Python ({platform.python_version()}) has no safe tar extraction "
            "(tarfile's 'data' filter needs 3.10.12+, 3.11.4+ or 3.12+); upgrade Python, or extract the "
            "archive yourself and pass the extracted folder"
        )
    dest.mkdir(parents=True, exist_ok=True)
    member_filter = _member_filter(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()  # reads the whole archive: corrupt ones fail before writing
            # A dry run of the filter: with links refused, extracting earlier members cannot change
            # its verdict on later ones, so this decides for the whole archive up front.
            for member in members:
                member_filter(member, str(dest))
            tar.extractall(dest, members=members, filter=member_filter)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise CifarError(f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc})") from exc
    except gzip.BadGzipFile as exc:
        # An OSError subclass, so caught explicitly; other OSErrors (disk full, permissions)
        # are not data problems and keep their own type.
        raise CifarError(f"{archive}: not a readable tar.gz archive ({exc})") from exc
    return dest


def extract_once(archive: Path) -> Path:
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
        response = urllib.request.urlopen(url, timeout=timeout)  # the caller picks the URL
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

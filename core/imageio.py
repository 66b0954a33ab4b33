"""Reading and writing picture files: decode (with EXIF orientation), encode, atomic write.

Arrays are in OpenCV's layout: gray (H, W), BGR (H, W, 3) or BGRA (H, W, 4), uint8 or
uint16 (float32 for HDR formats). Palette PNGs come out of OpenCV already expanded to
BGR(A). EXIF orientation is applied here because IMREAD_UNCHANGED (the only mode that
keeps alpha and 16-bit depth together) ignores it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from labcolor.core.errors import ImageError, OutputError
from labcolor.core.header import DEFAULT_MAX_PIXELS, Header, read_header

# Extensions a folder walk picks up (files named on the command line are tried whatever their name).
INPUT_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .apng .webp .tif .tiff .bmp .dib .pbm .pgm .ppm .pnm .sr .ras "
    ".jp2 .hdr .pic .pfm .gif .avif".split()
)


# Extensions a folder walk treats as videos (runtime.video colorizes them; the output keeps the extension).
VIDEO_SUFFIXES = frozenset([".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"])


@dataclass(frozen=True)
class OutputFormat:
    """What OpenCV's encoder for one extension can hold."""

    keeps_16bit: bool
    keeps_alpha: bool
    params: tuple[int, ...] = ()


_JPEG = OutputFormat(False, False, (cv2.IMWRITE_JPEG_QUALITY, 95))
# PNG level 1: ~3x faster to encode than OpenCV's default at photo sizes, for files ~10% larger.
_PNG = OutputFormat(True, True, (cv2.IMWRITE_PNG_COMPRESSION, 1))
_TIFF = OutputFormat(True, True)
_BMP = OutputFormat(False, True)
_PNM = OutputFormat(True, False)
_RAS = OutputFormat(False, False)
OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".jpg": _JPEG, ".jpeg": _JPEG, ".jpe": _JPEG, ".jfif": _JPEG,
    ".png": _PNG,
    # OpenCV's WebP default is lossless (slow, large); 95 matches the JPEG setting.
    ".webp": OutputFormat(False, True, (cv2.IMWRITE_WEBP_QUALITY, 95)),
    ".tif": _TIFF, ".tiff": _TIFF,
    ".bmp": _BMP, ".dib": _BMP,
    ".ppm": _PNM, ".pnm": _PNM,
    ".sr": _RAS, ".ras": _RAS,
    ".avif": OutputFormat(False, True),
}
# Inputs whose format cannot hold a colour picture (pgm/pbm), that OpenCV writes badly (gif: 256 colours,
# jp2) or only as float HDR are written as PNG unless --format says otherwise.
FALLBACK_SUFFIX = ".png"

_EXIF_ORIENTATION = 0x0112


def output_suffix(input_suffix: str, fmt: str | None = None) -> str:
    """The output file's suffix: `fmt` ("png", ".JPG", ...) if given, else the input's when writable, else .png.

    The input's spelling is kept ("IMG_1.JPG" -> "IMG_1.JPG") so outputs mirror inputs exactly.
    """
    if fmt:
        suffix = fmt.lower() if fmt.startswith(".") else "." + fmt.lower()
        if suffix not in OUTPUT_FORMATS:
            raise OutputError(f"unknown output format {fmt!r}; choose one of {', '.join(sorted(formats()))}")
        return suffix
    return input_suffix if input_suffix.lower() in OUTPUT_FORMATS else FALLBACK_SUFFIX


def formats() -> list[str]:
    """Output format names accepted by --format (without the dot)."""
    return sorted({s[1:] for s in OUTPUT_FORMATS})


# ------------------------------------------------------------------------------- reading


def exif_orientation(exif: bytes) -> int:
    """The EXIF Orientation (1..8) in a TIFF-structured EXIF block, 1 when absent or malformed."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", exif, 4)
        (count,) = struct.unpack_from(end + "H", exif, ifd)
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(end + "HHIH", exif, ifd + 2 + 12 * i)
            if tag == _EXIF_ORIENTATION and kind == 3:  # SHORT, stored left-justified in the value field
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into displayed pixels for EXIF orientation 1..8 (same result as OpenCV's imread)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


# Shrink-on-load factors: JPEG decodes directly at 1/2, 1/4 or 1/8 size, several times faster.
# Orientation is ignored by OpenCV here because `decode` applies it itself, once.
_REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray  # see decode
    header: Header | None  # what the file's header said (format, size, frames); None if unknown


def decode(data: bytes | np.ndarray, *, source: str = "", reduce: int = 1,
           max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Encoded bytes -> oriented pixels: gray (H, W), BGR (H, W, 3) or BGRA (H, W, 4); depth as stored.

    `source` (a file name) prefixes error messages when given. `reduce` (2, 4 or 8) decodes at
    that fraction of the size as 8-bit BGR, for quick looks (scanning a training folder).
    `max_pixels`: a picture whose header declares more pixels is refused (ImageError) before any
    pixel is decoded; None: no limit. Multi-frame files give their first frame (see decode_file).
    """
    return decode_file(data, source=source, reduce=reduce, max_pixels=max_pixels).image


def check_pixels(header: Header | None, shape: tuple[int, ...] | None, max_pixels: int | None, at: str = "") -> None:
    """ImageError when a picture (by its header, or by its decoded shape) has more than `max_pixels` pixels."""
    if max_pixels is None:
        return
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive or None, got {max_pixels}")
    width, height = (header.width, header.height) if header is not None else (shape[1], shape[0]) if shape else (0, 0)
    if width * height > max_pixels:
        raise ImageError(
            f"{at}{width}x{height} is {width * height / 1e6:.0f} megapixels, over the limit of "
            f"{max_pixels / 1e6:g} (refused before decoding; raise the limit with --max-megapixels)"
        )


def decode_file(data: bytes | np.ndarray, *, source: str = "", reduce: int = 1,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Decoded:
    """`decode`, also returning the file's header (the frame count of an animation, its format)."""
    if reduce != 1 and reduce not in _REDUCED:
        raise ValueError(f"reduce must be 1, 2, 4 or 8, got {reduce}")
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    at = f"{source}: " if source else ""
    if buf.size == 0:
        raise ImageError(f"{at}empty file (0 bytes)")
    header = read_header(buf)
    check_pixels(header, None, max_pixels, at)
    try:
        image, kinds, blocks = cv2.imdecodeWithMetadata(buf, _REDUCED.get(reduce, cv2.IMREAD_UNCHANGED))
    except cv2.error as exc:
        raise ImageError(f"{at}not a readable picture ({str(exc).strip().splitlines()[-1]})") from exc
    if image is None or image.size == 0:
        # OpenCV returns nothing both for unknown formats and for corrupt or truncated files.
        raise ImageError(f"{at}not a readable picture (corrupt, truncated, or not an image format OpenCV knows)")
    if header is None:
        check_pixels(None, image.shape, max_pixels, at)  # a format whose header is not read: checked after
    for kind, block in zip(kinds, blocks):
        if kind == cv2.IMAGE_METADATA_EXIF:
            image = apply_orientation(image, exif_orientation(np.asarray(block, np.uint8).tobytes()))
            break
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise ImageError(f"{at}unsupported channel layout {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ImageError(f"{at}unsupported pixel type {image.dtype}")
    gif_alpha = header is not None and header.format == "GIF" and image.ndim == 3 and image.shape[2] == 4
    if gif_alpha and int(image[:, :, 3].min()) == 255:
        # OpenCV gives every GIF an alpha channel; keep it only when some pixel is transparent.
        image = np.ascontiguousarray(image[:, :, :3])
    return Decoded(image, header)


def read(path: Path, *, reduce: int = 1, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode one file (see `decode`); OSError for an unreadable file, ImageError for a bad picture."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not a picture")
    # np.fromfile handles any path (non-ASCII too); cv2.imread does not on every platform.
    return decode(np.fromfile(path, dtype=np.uint8), source=str(path), reduce=reduce, max_pixels=max_pixels)


def color8(image: np.ndarray) -> np.ndarray | None:
    """A decoded picture -> uint8 BGR (H, W, 3), alpha dropped, 16-bit and float scaled; None if it is gray.

    What training and evaluation need of a colour ground truth (the runtime keeps depth and alpha).
    """
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        return None
    bgr = image[:, :, :3]
    if bgr.dtype == np.uint16:
        bgr = ((bgr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif bgr.dtype.kind == "f":
        bgr = (np.clip(bgr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(bgr)


# ------------------------------------------------------------------------------- writing


def encode(image: np.ndarray, suffix: str) -> bytes:
    """Pixels (OpenCV layout, uint8/uint16) -> file bytes in the format of `suffix` (".jpg", ".png", ...)."""
    fmt = OUTPUT_FORMATS.get(suffix.lower())
    if fmt is None:
        raise OutputError(f"cannot write {suffix!r} files; choose one of {', '.join(formats())}")
    if image.dtype == np.uint16 and not fmt.keeps_16bit:
        # Documented conversion: 16-bit -> 8-bit by v/257 rounded (exact inverse of 8->16 expansion).
        image = cv2.convertScaleAbs(image, alpha=1.0 / 257.0)
    if image.ndim == 3 and image.shape[2] == 4 and not fmt.keeps_alpha:
        image = image[:, :, :3]
    try:
        ok, buf = cv2.imencode(suffix, image, list(fmt.params))
    except cv2.error as exc:
        raise OutputError(f"cannot encode {suffix}: {str(exc).strip().splitlines()[-1]}") from exc
    if not ok:
        raise OutputError(f"cannot encode {suffix}")
    return buf.tobytes()


TEMP_MARK = ".labcolor-"
_temp_counter = iter(range(1 << 62))
_temp_lock = threading.Lock()


def temp_name(target: Path) -> Path:
    """`.NAME.labcolor-PID-N.tmp` beside `target`: hidden, unique per process and call, tied to our pid."""
    with _temp_lock:
        n = next(_temp_counter)
    return target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}-{n}.tmp")


def write_atomic(target: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write `data` to `target` via a temporary file in the same folder and os.replace.

    A reader (or a re-run after a crash or SIGKILL) sees either no file or the complete one,
    never a partial picture; a failed write removes its temporary file. The file gets the
    usual umask permissions (unlike tempfile.mkstemp's owner-only 0600). `fsync` also
    survives a power cut: worth it for checkpoints and models, too slow per picture.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_stale_temps(folder: Path) -> int:
    """Delete temporary files left in `folder` by killed runs (their pid is gone); returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp") and TEMP_MARK in name):
            continue
        try:
            pid = int(name.rsplit(TEMP_MARK, 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue  # ours, or another run is writing there right now
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) is not a probe on Windows; leave such files alone there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. PermissionError: it exists, owned by someone else
    return True

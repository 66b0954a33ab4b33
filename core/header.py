"""What a picture file's header says (size, frame count) without decoding its pixels.

Used to refuse decompression bombs before OpenCV allocates them: a 900 KB PNG can declare
30000 x 30000 pixels (2.7 GB once decoded). Headers are read by Pillow's format plugins, which
parse only the header when a file is opened (pixels are decoded on `load()`, never called here):
JPEG (markers up to the SOF segment), PNG/APNG (IHDR, acTL), WebP (VP8/VP8L/VP8X chunks, via
libwebp's demuxer for animations), TIFF (first IFD; pages by walking the IFD chain), BMP, the
Netpbm family and PFM, Sun raster, JPEG 2000 (the codestream's SIZ or the jp2 header box), GIF
(logical screen; frames by skipping through the blocks) and AVIF. Pillow was chosen over
hand-written parsers because it already handles the many variants of these formats (JPEG
progressive/arithmetic SOFs, BigTIFF, extended WebP) and is maintained for exactly this.
Radiance HDR and colour PFM, which Pillow does not read, have their text headers parsed here.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

# Pillow format ids of the formats OpenCV decodes (core.imageio.INPUT_SUFFIXES). Others that Pillow
# knows (TGA, ICO, PSD, ...) are not tried: OpenCV cannot decode them anyway, and some have weak
# signatures that could claim a file of another kind.
_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "DIB", "PPM", "SUN", "JPEG2000", "GIF", "AVIF")

# Radiance HDR: "#?RADIANCE" (or "#?RGBE"), header lines, an empty line, then e.g. "-Y 768 +X 1024".
_HDR_SIZE = re.compile(rb"\n\n([-+])([XY]) (\d+) ([-+])([XY]) (\d+)\n")
_HDR_HEADER_MAX = 64 * 1024

# Largest picture decoded by default: 200 megapixels, the largest photos cameras take (a 200 MP phone
# sensor's 16320 x 12240 frame) and most scans. Larger files are refused from their header (README,
# "Limits", gives the memory a large picture costs). Kept here, free of numpy/OpenCV, so the CLI can
# show it in --help without importing them.
DEFAULT_MAX_PIXELS = 200_000_000


@dataclass(frozen=True)
class Header:
    format: str  # Pillow's format name ("JPEG", "PNG", ...) or "HDR"
    width: int
    height: int
    frames: int = 1  # > 1: an animation or a multi-page file

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes | bytearray | memoryview | Any) -> Header | None:
    """The header of an encoded picture (bytes, or a uint8 numpy array of them), or None when its format is
    not one of those listed above or its header is unreadable (the decoder then decides: it will usually
    fail on such a file too)."""
    raw = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else data.tobytes()
    if raw.startswith((b"#?RADIANCE", b"#?RGBE")):
        return _radiance(raw)
    if raw[:3] in (b"PF\n", b"Pf\n", b"PF\r", b"Pf\r", b"PF ", b"Pf "):
        return _pfm(raw)
    return _pillow(raw)


def _pillow(raw: bytes) -> Header | None:
    from PIL import Image  # here, not at the top: the CLI reads DEFAULT_MAX_PIXELS without loading Pillow

    Image.init()
    for name in _PILLOW_FORMATS:
        if name not in Image.OPEN:
            continue  # e.g. a Pillow built without AVIF
        factory, accept = Image.OPEN[name]
        try:
            if accept is not None and not accept(raw[:16]):
                continue
            # The plugin factory directly, not Image.open: Image.open applies Pillow's own decompression
            # bomb limit (89 MP warning, 179 MP error), while the limit here is labcolor's, configurable.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = factory(io.BytesIO(raw), "")
                width, height = image.size
                frames = int(getattr(image, "n_frames", 1) or 1)
        except Exception:  # noqa: BLE001, S112 - a plugin refusing or failing on a malformed header: not this format
            continue
        if width > 0 and height > 0:
            return Header(name, int(width), int(height), max(1, frames))
    return None


def _pfm(raw: bytes) -> Header | None:
    """Portable float map ("PF" colour, "Pf" gray; Pillow reads only the latter): "PF\n<w> <h>\n<scale>\n"."""
    fields = raw[:256].split(maxsplit=3)
    if len(fields) < 3 or not (fields[1].isdigit() and fields[2].isdigit()):
        return None
    return Header("PFM", int(fields[1]), int(fields[2]))


def _radiance(raw: bytes) -> Header | None:
    match = _HDR_SIZE.search(raw[:_HDR_HEADER_MAX])
    if match is None:
        return None
    sizes = {match.group(2): int(match.group(3)), match.group(5): int(match.group(6))}
    if set(sizes) != {b"X", b"Y"}:
        return None
    return Header("HDR", sizes[b"X"], sizes[b"Y"])

"""`colorize serve`: an HTTP service around one Colorizer (FastAPI on uvicorn), and its web page.

    POST /v1/colorize   a picture (multipart field "file", or the raw body) -> the colorized picture
                        options: size, saturation, format (png | jpeg | webp; else from Accept)
    GET  /v1/model      the model's metadata and the server's limits
    GET  /healthz       {"status": "ok"}
    GET  /              the web page (runtime/web/ at /web/, served from the package: no CDN)
    GET  /openapi.json  the API description (FastAPI); /docs shows it

What protects the machine, and why:
* Upload size: Content-Length over `max_bytes` is refused with 413 before a byte is read; a body
  without one is read in chunks and refused as soon as it passes the limit.
* Pixels: the picture's header (core.header) is read before decoding; over `max_pixels` -> 413,
  without allocating the picture.
* Pictures in flight: at most `max_in_flight` requests hold a body or a picture at once (being
  read, waiting for a worker, or colorized by one of `workers` threads sharing one model session);
  one more gets 503 with Retry-After instead of joining an unbounded queue. A slot is taken
  before the body is read and freed only when its work has really ended, so memory is bounded
  by max_in_flight x (max_bytes + one decoded picture), whatever clients do.
* Time: a request whose picture takes longer than `timeout` gets 504; its worker finishes the
  picture and then frees the slot (a thread cannot be killed safely).
* Bad input is a 4xx with {"detail": "<one line>"}; nothing is written to disk (multipart bodies are
  parsed in memory, not spooled to temporary files as Starlette's form parser would).
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, which name classes
# imported inside create_app (FastAPI is an optional extra), so they must be evaluated where they are defined.

import asyncio
import email.parser
import email.policy
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labcolor import __version__
from labcolor.core import imageio
from labcolor.core.errors import ConfigError, ImageError, ModelOutputError
from labcolor.core.header import read_header
from labcolor.core.metadata import MAX_SATURATION
from labcolor.runtime.colorizer import Colorizer
from labcolor.runtime.folder import one_line, output_dtype

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
OPTIONS = frozenset({"size", "saturation", "format"})
_FORMATS = {"png": (".png", "image/png"), "jpeg": (".jpg", "image/jpeg"), "jpg": (".jpg", "image/jpeg"),
            "webp": (".webp", "image/webp")}
MAX_SIZE = 2048  # largest working size a request may ask for (the network's cost grows with its square)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 30 * 2**20  # upload size
    max_pixels: int = 50_000_000  # a 50 MP picture decodes to ~150 MB, its colour maths take ~1 GB at peak
    workers: int = 2  # pictures colorized at once (threads sharing the model session)
    max_in_flight: int = 4  # requests holding a body or picture at once (workers + a short queue)
    timeout: float = 60.0  # seconds per picture, from the moment it has a slot

    def check(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.max_in_flight < self.workers:
            raise ConfigError(f"max_in_flight ({self.max_in_flight}) must be at least workers ({self.workers})")


class RequestError(Exception):
    """A request the server refuses: HTTP status and a one-line reason (never leaves this module)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


class _Slots:
    """A counter of requests in flight that refuses instead of queueing."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.used -= 1


def choose_format(requested: str | None, accept: str) -> tuple[str, str]:
    """(suffix, media type) of the answer: `format` if given, else the first image type in Accept we write."""
    if requested is not None:
        if requested.lower() not in _FORMATS:
            raise RequestError(422, f"format must be one of png, jpeg, webp; got {requested!r}")
        return _FORMATS[requested.lower()]
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        for suffix, kind in _FORMATS.values():
            if media == kind:
                return suffix, kind
    return _FORMATS["png"]


def parse_options(query: dict[str, str], colorizer: Colorizer) -> tuple[int | None, float | None, str | None]:
    """(size, saturation, format) from the query string; unknown or invalid options -> 422."""
    unknown = sorted(set(query) - OPTIONS)
    if unknown:
        raise RequestError(422, f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
    size = saturation = None
    try:
        if "size" in query:
            size = int(query["size"])
        if "saturation" in query:
            saturation = float(query["saturation"])
    except ValueError as exc:
        raise RequestError(422, f"size must be an integer and saturation a number ({exc})") from exc
    if size is not None and not colorizer.metadata.size_multiple <= size <= MAX_SIZE:
        raise RequestError(422, f"size must be between {colorizer.metadata.size_multiple} and {MAX_SIZE}, got {size}")
    if saturation is not None and not 0 <= saturation <= MAX_SATURATION:
        raise RequestError(422, f"saturation must be between 0 and {MAX_SATURATION:g}, got {saturation}")
    return size, saturation, query.get("format")


def extract_upload(body: bytes, content_type: str) -> bytes:
    """The picture's bytes: the body itself, or the first file part of a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        return body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise RequestError(400, "malformed multipart body")
    parts = [p for p in message.iter_parts()
             if p.get_filename() is not None or p.get_param("name", header="content-disposition") == "file"]
    if not parts:
        raise RequestError(400, "the multipart body has no file part (send the picture as the field 'file')")
    payload = parts[0].get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def colorize_bytes(colorizer: Colorizer, data: bytes, suffix: str, *, size: int | None = None,
                   saturation: float | None = None, max_pixels: int | None = None) -> bytes:
    """Encoded picture -> encoded colorized picture: what `colorize` does to a file, in memory."""
    decoded = imageio.decode_file(np.frombuffer(data, np.uint8), max_pixels=max_pixels)
    item = colorizer.prepare(decoded.image, bgr=True, size=size)
    ab = colorizer.predict(item.net[None])[0]
    picture = colorizer.finish(item, ab, dtype=output_dtype(item.dtype, suffix), bgr=True, saturation=saturation)
    return imageio.encode(picture, suffix)


def create_app(colorizer: Colorizer, limits: Limits = Limits(), *, web_dir: Path | None = WEB_DIR) -> Any:
    """The ASGI application (FastAPI). Needs labcolor[serve]."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, RedirectResponse, Response
        from fastapi.staticfiles import StaticFiles
    except ImportError as exc:
        raise ConfigError("colorize serve needs FastAPI and uvicorn: pip install 'labcolor[serve]'") from exc
    limits.check()
    executor = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="labcolor-serve")
    slots = _Slots(limits.max_in_flight)
    app = FastAPI(title="labcolor", version=__version__,
                  description="Colorize grayscale photos (CIE Lab, ONNX). POST a picture to /v1/colorize.")
    app.state.colorizer, app.state.limits, app.state.slots = colorizer, limits, slots

    @app.exception_handler(RequestError)
    async def refused(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        meta = colorizer.metadata
        return {"model": str(colorizer.model_path.name), "device": colorizer.device,
                "metadata": {**asdict(meta), "scaling": meta.scaling.to_dict()},
                "working_size": colorizer.size, "saturation": colorizer.saturation,
                "limits": asdict(limits), "options": sorted(OPTIONS), "formats": ["png", "jpeg", "webp"]}

    @app.post("/v1/colorize", responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
                                         413: {}, 415: {}, 422: {}, 503: {}, 504: {}})
    async def colorize(request: Request) -> Response:
        size, saturation, fmt = parse_options(dict(request.query_params), colorizer)
        suffix, media = choose_format(fmt, request.headers.get("accept", ""))
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
            raise RequestError(413, f"upload of {int(declared)} bytes is over the limit of {limits.max_bytes}")
        if not slots.take():
            raise RequestError(503, f"busy: {limits.max_in_flight} pictures in flight; retry shortly",
                               {"Retry-After": "1"})
        handed_over, header = False, None
        try:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limits.max_bytes:
                    raise RequestError(413, f"upload over the limit of {limits.max_bytes} bytes")
            data = extract_upload(bytes(body), request.headers.get("content-type", ""))
            del body
            if not data:
                raise RequestError(400, "empty upload: send the picture as the body or as the multipart field 'file'")
            header = read_header(data)
            if header is not None and header.pixels > limits.max_pixels:
                raise RequestError(413, f"{header.width}x{header.height} is over the limit of "
                                   f"{limits.max_pixels / 1e6:g} megapixels (refused before decoding)")
            future = asyncio.get_running_loop().run_in_executor(
                executor, lambda: colorize_bytes(colorizer, data, suffix, size=size, saturation=saturation,
                                                 max_pixels=limits.max_pixels))
            future.add_done_callback(lambda _: slots.give())  # the slot ends with the work, not the request
            handed_over = True
            try:
                result = await asyncio.wait_for(asyncio.shield(future), limits.timeout)
            except TimeoutError as exc:
                raise RequestError(504, f"the picture took longer than {limits.timeout:g} s") from exc
        except ImageError as exc:
            # A format we recognise but cannot decode is damaged (422); an unknown one is not a picture (415).
            status = 413 if "over the limit" in str(exc) else 422 if header is not None else 415
            raise RequestError(status, one_line(exc)) from exc
        except ModelOutputError as exc:
            raise RequestError(500, f"the model failed on this picture: {exc}") from exc
        finally:
            if not handed_over:
                slots.give()
        return Response(content=result, media_type=media)

    if web_dir is not None and (web_dir / "index.html").is_file():
        # Under /web/, not at the root: a catch-all mount at / would answer GET /v1/colorize with 404, not 405.
        app.mount("/web", StaticFiles(directory=web_dir, html=True), name="page")

        @app.get("/", include_in_schema=False)
        async def page() -> RedirectResponse:
            return RedirectResponse("/web/")
    app.router.on_shutdown.append(lambda: executor.shutdown(wait=False, cancel_futures=True))
    return app

"""`colorize serve`: the HTTP service and web page (runtime.server) on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labcolor.commands._common import device_option, err, require_positive

_LIMITS = "Limits"


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on. The default serves this machine only; see the "
                                      "README before exposing it (put a reverse proxy with TLS and auth in front).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A .onnx model. Default: the shipped model.")]
    = None,
    device: device_option("Model") = "auto",  # type: ignore[valid-type]
    workers: Annotated[int | None, typer.Option(help="Pictures colorized at once (threads sharing one model "
                                                "session). Default: CPU cores.", rich_help_panel=_LIMITS)] = None,
    max_in_flight: Annotated[int | None, typer.Option(help="Requests holding a picture at once (workers plus a "
                                                      "short queue); more get 503 + Retry-After. Default: 2 x "
                                                      "workers.", rich_help_panel=_LIMITS)] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload; larger ones get 413.",
                                                 rich_help_panel=_LIMITS)] = 30.0,
    max_megapixels: Annotated[float, typer.Option(help="Largest picture, read from its header before decoding; "
                                                  "larger ones get 413.", rich_help_panel=_LIMITS)] = 50.0,
    timeout: Annotated[float, typer.Option(help="Seconds a picture may take; then 504.",
                                           rich_help_panel=_LIMITS)] = 60.0,
) -> None:
    """Serve colorization over HTTP, with a web page at / (loopback only by default).

    POST a picture to /v1/colorize (multipart field "file" or the raw body; options size, saturation, format) and get the colorized picture back; GET /v1/model describes the model, /docs the API. Ctrl+C stops it.
    """
    import uvicorn

    from labcolor.runtime import Colorizer
    from labcolor.runtime.colorizer import cpu_count
    from labcolor.runtime.server import Limits, create_app

    require_positive((("--workers", workers), ("--max-in-flight", max_in_flight), ("--port", port)))
    workers = workers or cpu_count()
    limits = Limits(max_bytes=round(max_upload_mb * 2**20), max_pixels=round(max_megapixels * 1e6), workers=workers,
                    max_in_flight=max_in_flight or 2 * workers, timeout=timeout)
    limits.check()
    colorizer = Colorizer(model, device, threads=1 if workers > 1 else None)
    app = create_app(colorizer, limits)
    err.print(f"serving {colorizer.model_path.name} on {colorizer.device} at http://{host}:{port}/ "
              f"({workers} worker(s), at most {limits.max_in_flight} pictures in flight); Ctrl+C stops",
              highlight=False)
    # uvicorn's own connection cap is a second fence behind the in-flight limit (slow clients holding sockets).
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=limits.max_in_flight * 4 + 16,
                timeout_keep_alive=5)

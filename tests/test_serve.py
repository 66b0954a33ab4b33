"""`colorize serve` over real HTTP on loopback: round trips, every bad input class, limits, a bounded load."""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from labcolor.runtime import Colorizer
from tests import runtime_fixtures as fx
from tests.serve_client import Server, load, multipart, serve

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="module")
def server(tiny: Path) -> Server:
    with serve("-m", str(tiny), "--workers", "2", "--max-in-flight", "8", "--max-upload-mb", "1",
               "--max-megapixels", "4") as s:
        yield s


def png(picture: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", picture)
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds almost none: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_picture_round_trip_equals_the_library(server: Server, tiny: Path) -> None:
    picture = fx.photo(90, 130, seed=4)  # BGR, as OpenCV decodes it
    status, headers, body = server.request("POST", "/v1/colorize", png(picture), {"Content-Type": "image/png"})
    assert status == 200 and headers["content-type"] == "image/png"
    np.testing.assert_array_equal(decode(body), Colorizer(tiny).colorize(picture, bgr=True))
    # multipart, JPEG by Accept, and the options the CLI has
    upload, kind = multipart(png(picture))
    status, headers, body = server.request("POST", "/v1/colorize?size=32&saturation=0", upload,
                                           {"Content-Type": kind, "Accept": "image/jpeg"})
    assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    gray = decode(body).astype(np.int16)
    assert np.abs(gray - gray.mean(axis=2, keepdims=True)).max() <= 3  # saturation 0: gray (JPEG noise aside)
    status, headers, _ = server.request("POST", "/v1/colorize?format=webp", png(picture))
    assert status == 200 and headers["content-type"] == "image/webp"


def test_model_health_and_api_description(server: Server) -> None:
    status, _, body = server.request("GET", "/v1/model")
    info = json.loads(body)
    assert status == 200 and info["metadata"]["size_multiple"] == 8 and info["limits"]["max_in_flight"] == 8
    assert server.request("GET", "/healthz")[0] == 200
    status, _, body = server.request("GET", "/openapi.json")
    assert status == 200 and "/v1/colorize" in json.loads(body)["paths"]


@pytest.mark.parametrize(("name", "method", "path", "body", "status", "reason"), [
    ("empty", "POST", "/v1/colorize", b"", 400, "empty upload"),
    ("not a picture", "POST", "/v1/colorize", b"%PDF-1.4 certainly not a picture", 415, "not a readable picture"),
    ("truncated", "POST", "/v1/colorize", None, 422, "not a readable picture"),
    ("oversized bytes", "POST", "/v1/colorize", b"\0" * (2**20 + 1), 413, "over the limit"),
    ("pixel bomb", "POST", "/v1/colorize", png_header_only(30000, 30000), 413, "megapixels"),
    ("wrong method", "GET", "/v1/colorize", None, 405, "Method Not Allowed"),
    ("unknown option", "POST", "/v1/colorize?colour=red", None, 422, "unknown option(s): colour"),
    ("bad option value", "POST", "/v1/colorize?saturation=9", None, 422, "saturation must be between"),
    ("bad multipart", "POST", "/v1/colorize", b"--x\r\n\r\n--x--", 400, "no file part"),
])
def test_bad_input_gets_a_4xx_and_the_server_keeps_serving(server: Server, name: str, method: str, path: str,
                                                           body: bytes | None, status: int, reason: str) -> None:
    good = png(fx.photo(40, 50))
    if body is None and method == "POST":
        body = good[: len(good) // 2] if name == "truncated" else good
    headers = {"Content-Type": "multipart/form-data; boundary=x"} if name == "bad multipart" else {}
    got, answer_headers, answer = server.request(method, path, body, headers)
    assert got == status, (name, got, answer)
    assert answer_headers["content-type"].startswith("application/json")
    detail = json.loads(answer)["detail"]
    assert reason in detail and "\n" not in detail, detail
    assert server.request("POST", "/v1/colorize", good)[0] == 200  # still serving


def test_a_slow_upload_holds_a_slot_and_the_next_request_gets_503(tiny: Path) -> None:
    with serve("-m", str(tiny), "--workers", "1", "--max-in-flight", "1") as s:
        stalled = socket.create_connection(("127.0.0.1", s.port))
        try:  # headers and a part of the body, then nothing: the request holds the only slot
            stalled.sendall(b"POST /v1/colorize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                            b"Content-Length: 100000\r\n\r\n" + b"\0" * 100)
            time.sleep(0.5)
            status, headers, body = s.request("POST", "/v1/colorize", png(fx.photo(40, 50)))
            assert status == 503 and headers["retry-after"] == "1" and "busy" in json.loads(body)["detail"]
        finally:
            stalled.close()
        deadline = time.monotonic() + 10
        while s.request("POST", "/v1/colorize", png(fx.photo(40, 50)))[0] != 200:  # the slot comes back
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_a_picture_over_the_time_limit_gets_504(tiny: Path) -> None:
    with serve("-m", str(tiny), "--timeout", "0.001") as s:
        status, _, body = s.request("POST", "/v1/colorize", png(fx.photo(1200, 1600)))
        assert status == 504 and "took longer" in json.loads(body)["detail"]
        assert s.request("GET", "/healthz")[0] == 200


def test_bounded_load_no_failures_clean_503s_and_flat_memory(tiny: Path) -> None:
    body = png(fx.photo(300, 400, seed=2))
    with serve("-m", str(tiny), "--workers", "2", "--max-in-flight", "8") as s:
        warm = load(s, body, clients=8, requests=40, seconds=20)
        assert warm.statuses == {200: 40}, warm.statuses
        _, peak_warm = s.memory_kb()
        below = load(s, body, clients=8, requests=300, seconds=20)  # at the in-flight limit: nothing refused
        assert not below.errors and set(below.statuses) == {200}, (below.statuses, below.errors[:3])
        above = load(s, body, clients=16, requests=300, seconds=20)  # above it: 200 or a clean 503, nothing else
        assert not above.errors and set(above.statuses) <= {200, 503} and above.ok > 0, above.statuses
        _, peak_end = s.memory_kb()
        assert peak_end <= 1.10 * peak_warm, (peak_warm, peak_end)
        print(f"load: {below.ok / below.seconds:.1f} req/s, p50 {below.percentile(50) * 1000:.0f} ms, "
              f"p95 {below.percentile(95) * 1000:.0f} ms; above the limit {above.statuses}; "
              f"peak RSS {peak_warm // 1024} -> {peak_end // 1024} MB")

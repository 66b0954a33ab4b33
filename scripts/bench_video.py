"""Benchmark video colorization (runtime.video) with the shipped model, on clips generated here.

Prints
  * speed: frames/s of colorize_video on a 1920x1080 H.264 + AAC clip (decode -> prepare -> network ->
    temporal smoothing -> upsample + Lab merge -> libx264 encode, audio remuxed), and where a frame's time goes;
  * memory: peak RSS (ru_maxrss of a fresh subprocess per clip) for a short and a long 640x360 clip, with the
    same process's peak right after loading the model: flat with the length means streaming works;
  * flicker: the flicker metric (mean |Δab| over still pixels, pairs across a cut left out) and the mean ΔE00
    against the colour original, for temporal 0, 0.5 and 0.8, plus the colour original's own flicker.

The clips are generated (no data needed): a pan across a colourful textured canvas with moving shapes and
film grain, a scene cut half-way, H.264 CRF 18 like a typical source; their colour frames are the ground
truth, the colorizer sees their lightness. With --photos DIR the canvases are colour photos from DIR instead.

    python scripts/bench_video.py                          # everything, default model, CPU
    python scripts/bench_video.py --only flicker --photos /path/to/colour/photos
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labcolor.core import color  # after the sys.path line: the repository's labcolor, installed or not
from labcolor.runtime import Colorizer, video

# ----------------------------------------------------------------------------- generated clips


def _canvas(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A colourful RGB float32 canvas: smooth colour fields, filled shapes, fixed texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 3, 3)
        planes.append(125 + 70 * np.sin(xx / width * fx * 6.28 + phase) * np.cos(yy / height * fy * 6.28))
    img = np.ascontiguousarray(np.stack(planes, axis=-1))
    scale = min(height, width)
    for _ in range(14):
        colour = tuple(float(v) for v in rng.uniform(20, 235, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.uniform(0.03, 0.15) * scale), colour, -1, cv2.LINE_AA)
        else:
            size = (int(rng.uniform(0.05, 0.25) * scale), int(rng.uniform(0.05, 0.25) * scale))
            cv2.rectangle(img, centre, (centre[0] + size[0], centre[1] + size[1]), colour, -1, cv2.LINE_AA)
    img += cv2.GaussianBlur(rng.normal(0, 10, img.shape).astype(np.float32), (0, 0), 1.5)  # fixed texture
    return img


def _photo_canvas(path: Path, height: int, width: int) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    scale = max(height / bgr.shape[0], width / bgr.shape[1])
    bgr = cv2.resize(bgr, (int(np.ceil(bgr.shape[1] * scale)), int(np.ceil(bgr.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)


def clip_frames(n: int, height: int, width: int, *, seed: int = 0, photos: list[Path] | None = None,
                grain: float = 3.0):
    """Yields n RGB uint8 frames: two shots (cut at n // 2), each a slow pan across a canvas 12% larger than
    the frame, with two shapes moving across it and fresh grain each frame."""
    rng = np.random.default_rng(seed)
    margin_y, margin_x = int(height * 0.12) + 2, int(width * 0.12) + 2
    shots = []
    for shot in range(2):
        if photos:
            canvas = _photo_canvas(photos[(seed + shot) % len(photos)], height + margin_y, width + margin_x)
        else:
            canvas = _canvas(height + margin_y, width + margin_x, rng)
        shots.append(canvas)
    # Film grain in brightness only (the same on R, G and B), as monochrome grain: a colour original's own
    # flicker is then what H.264 does to its chroma, not noise put there on purpose.
    grains = [np.repeat(rng.normal(0, grain, (height, width, 1)).astype(np.float32), 3, axis=2) for _ in range(7)]
    cut = n // 2
    for i in range(n):
        shot, t = (0, i) if i < cut else (1, i - cut)
        length = cut if shot == 0 else n - cut
        canvas = shots[shot]
        oy = round((canvas.shape[0] - height) * t / max(1, length))
        ox = round((canvas.shape[1] - width) * t / max(1, length))
        frame = np.ascontiguousarray(canvas[oy : oy + height, ox : ox + width])
        r = max(4, height // 14)
        cv2.circle(frame, (int(width * (0.1 + 0.8 * t / max(1, length))), height // 3), r, (220, 60, 40), -1,
                   cv2.LINE_AA)
        cv2.rectangle(frame, (int(width * (0.85 - 0.6 * t / max(1, length))), int(height * 0.6)),
                      (int(width * (0.85 - 0.6 * t / max(1, length))) + 2 * r, int(height * 0.6) + r),
                      (40, 90, 200), -1, cv2.LINE_AA)
        frame += grains[i % len(grains)]
        yield np.clip(frame, 0, 255).astype(np.uint8)


def make_clip(path: Path, n: int, height: int, width: int, *, fps: int = 24, seed: int = 0,
              photos: list[Path] | None = None, audio: bool = True) -> Path:
    """Writes a generated clip as H.264 (CRF 18, yuv420p) with an AAC sine track in an MP4 or MKV."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.colorspace = 1 if height >= 720 else 6  # BT.709 for HD, BT.601 below, as players assume
        aud = None
        if audio:
            aud = out.add_stream("aac", rate=48000)
            aud.layout = "stereo"
        for i, img in enumerate(clip_frames(n, height, width, seed=seed, photos=photos)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709" if height >= 720 else "ITU601",
                                   dst_color_range=1)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        if aud is not None:
            total = int(n / fps * 48000)
            t = np.arange(total) / 48000
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, total, 1024):
                chunk = np.ascontiguousarray(np.stack([wave[k : k + 1024]] * 2))
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, k
                out.mux(aud.encode(af))
            out.mux(aud.encode())
    return path


# ----------------------------------------------------------------------------- measurements


def speed(colorizer: Colorizer, tmp: Path, frames: int, height: int, width: int) -> None:
    source = make_clip(tmp / "speed.mp4", frames, height, width)
    colorizer.colorize(np.zeros((height, width), np.uint8))  # warm-up: sessions, LUTs
    result = video.colorize_video(colorizer, source, tmp / "speed_out.mp4", overwrite=True)
    print(f"speed: {width}x{height}, {result.frames} frames, {result.codec} CRF 18, audio {result.audio[0]}: "
          f"{result.seconds:.1f} s, {result.fps:.2f} frames/s (temporal 0.5, batch {colorizer.batch_size})")
    # Where a frame's time goes: the same steps, timed one by one on the same clip.
    decode = prepare = predict = finish = 0.0
    stream = video.FrameStream(colorizer, temporal=0.5)
    t0 = time.perf_counter()
    frames_rgb = []
    for rgb in video.read_frames(source):
        frames_rgb.append(rgb)
        if len(frames_rgb) == 12:
            break
    decode = (time.perf_counter() - t0) / len(frames_rgb)
    for rgb in frames_rgb:
        t = time.perf_counter()
        item = colorizer.prepare(rgb, bgr=False)
        prepare += time.perf_counter() - t
        t = time.perf_counter()
        ab = colorizer.predict(item.net[None])[0]
        predict += time.perf_counter() - t
        t = time.perf_counter()
        smoothed, _ = stream.smoother(color.denormalize_l(item.net[0], colorizer.metadata.scaling), ab, item.crop)
        colorizer.finish(item, smoothed, bgr=False)
        finish += time.perf_counter() - t
    k = len(frames_rgb)
    per_frame = result.seconds / result.frames
    rest = per_frame - decode - (prepare + predict + finish) / k
    print(f"  per frame: decode+RGB {decode * 1e3:.0f} ms, prepare (L, working copy) {prepare / k * 1e3:.0f} ms, "
          f"network {predict / k * 1e3:.0f} ms at {item.net.shape[2]}x{item.net.shape[1]}, smooth+finish "
          f"{finish / k * 1e3:.0f} ms; the rest, {rest * 1e3:.0f} ms, is the encoder (libx264, in its own thread) "
          "not hidden behind these")


def peak_rss_kib() -> int:
    """This process's peak resident memory (KiB): VmHWM on Linux. Not ru_maxrss, which a child started by fork +
    exec inherits from its parent's size at the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(source: str, target: str, model: str, device: str) -> None:
    """Runs in a fresh process: peak RSS after loading the model, then after colorizing `source`."""
    colorizer = Colorizer(model, device)
    colorizer.colorize(np.zeros((64, 64), np.uint8))
    loaded = peak_rss_kib()
    result = video.colorize_video(colorizer, source, target, overwrite=True)
    peak = peak_rss_kib()
    print(json.dumps({"loaded_kib": loaded, "peak_kib": peak, "frames": result.frames, "fps": result.fps}))


def memory(model: Path, device: str, tmp: Path, lengths: list[int], height: int, width: int) -> None:
    rows = []
    for n in lengths:
        source = make_clip(tmp / f"mem{n}.mp4", n, height, width, seed=n)
        cmd = [sys.executable, __file__, "--child", str(source), str(tmp / f"mem{n}_out.mp4"), "--model", str(model),
               "--device", device]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append((n, json.loads(out.stdout.strip().splitlines()[-1])))
    print(f"memory: peak RSS, one fresh process per clip, {width}x{height} H.264 + AAC:")
    for n, r in rows:
        print(f"  {n:4d} frames: peak {r['peak_kib'] / 1024:6.0f} MiB   (model loaded: {r['loaded_kib'] / 1024:.0f} MiB, "
              f"+{(r['peak_kib'] - r['loaded_kib']) / 1024:.0f} MiB for the video; {r['fps']:.1f} frames/s)")


class SteadyColour(Colorizer):
    """Predicts one constant colour (a = 5.5, b = 11, a warm tone like the default model's) everywhere: colour
    that cannot flicker, so its flicker is the metric's floor (8-bit rounding where L changes by less than 1)."""

    def predict(self, batch, session=None):  # type: ignore[no-untyped-def, override]
        n, _, h, w = batch.shape
        ab = np.empty((n, 2, h, w), np.float32)
        ab[:, 0], ab[:, 1] = 0.05, 0.1
        return ab


def flicker_table(colorizer: Colorizer, tmp: Path, n: int, height: int, width: int, strengths: list[float],
                  photos: list[Path] | None, clips: int) -> None:
    rows: dict[str, list[tuple[float, float | None]]] = {}
    cuts = set()
    steady = SteadyColour(colorizer.model_path, "cpu")
    for c in range(clips):
        source = make_clip(tmp / f"flicker{c}.mp4", n, height, width, seed=100 + c, photos=photos)
        truth = list(video.read_frames(source))  # the colour original, as decoded
        base = video.flicker(truth)
        rows.setdefault("colour original", []).append((base.value, None))
        floor = video.colorize_video(steady, source, tmp / f"steady{c}.mkv", temporal=0, codec="libx264rgb",
                                     quality=0, overwrite=True)
        rows.setdefault("constant colour", []).append((video.measure(floor.target).flicker.value, None))
        for s in strengths:
            out = video.colorize_video(colorizer, source, tmp / f"flicker{c}_{s}.mkv", temporal=s,
                                       codec="libx264rgb", quality=0, overwrite=True)
            score = video.measure(out.target, truth)
            rows.setdefault(f"temporal {s:g}", []).append((score.flicker.value, score.de00))
            cuts.add(out.cuts)
    kind = f"pans across {'photos' if photos else 'generated canvases'}"
    found = ", ".join(str(list(c)) for c in sorted(cuts))
    print(f"flicker: {clips} clip(s), {width}x{height}, {n} frames each, cut at {n // 2} (detected: {found}), {kind}, "
          f"lossless output (libx264rgb crf 0) so only the colorizer is measured:")
    print(f"  {'':18s} {'flicker (mean |Δab|, still px)':>31s} {'ΔE00 vs colour original':>25s}")
    for name, values in rows.items():
        fl = float(np.mean([v[0] for v in values]))
        de = [v[1] for v in values if v[1] is not None]
        print(f"  {name:18s} {fl:31.3f} {f'{np.mean(de):.3f}' if de else '-':>25s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "runtime" / "models" / "default.onnx")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=["speed", "memory", "flicker"], action="append")
    parser.add_argument("--speed-frames", type=int, default=60)
    parser.add_argument("--speed-size", default="1920x1080")
    parser.add_argument("--memory-frames", default="30,300")
    parser.add_argument("--memory-size", default="640x360")
    parser.add_argument("--flicker-frames", type=int, default=72)
    parser.add_argument("--flicker-size", default="640x360")
    parser.add_argument("--flicker-clips", type=int, default=2)
    parser.add_argument("--temporal", default="0,0.5,0.8")
    parser.add_argument("--photos", type=Path, help="folder of colour photos to pan across (default: generated)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], str(args.model), args.device)
        return

    def size(text: str) -> tuple[int, int]:
        w, h = (int(v) for v in text.lower().split("x"))
        return h, w

    import av

    only = set(args.only or ["speed", "memory", "flicker"])
    colorizer = Colorizer(args.model, args.device)
    print(f"model {args.model.name} ({colorizer.device}, working size {colorizer.size}), PyAV {av.__version__} "
          f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    photos = None
    if args.photos:
        photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:8]
    with tempfile.TemporaryDirectory(prefix="labcolor-video-") as name:
        tmp = Path(name)
        if "speed" in only:
            speed(colorizer, tmp, args.speed_frames, *size(args.speed_size))
        if "memory" in only:
            memory(args.model, args.device, tmp, [int(v) for v in args.memory_frames.split(",")],
                   *size(args.memory_size))
        if "flicker" in only:
            flicker_table(colorizer, tmp, args.flicker_frames, *size(args.flicker_size),
                          [float(v) for v in args.temporal.split(",")], photos, args.flicker_clips)


if __name__ == "__main__":
    main()

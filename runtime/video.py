"""Video: colorize films frame by frame with steady colour (issue 17).

    from labcolor.runtime import Colorizer
    from labcolor.runtime.video import colorize_video
    result = colorize_video(Colorizer(), "film.mp4", "film_colorized.mp4", temporal=0.5)
    print(result.frames, result.notes)

Decoding and encoding go through PyAV (`pip install 'labcolor[video]'`). Its wheels bundle FFmpeg
(libavcodec with libx264, libvpx, the native AAC/Opus/MP3 coders), so the runtime install stays
self-contained: no system FFmpeg, no ffmpeg executable, no subprocess. `av` is imported inside
functions only; without it every entry point raises ConfigError with the install hint.

Per frame (`FrameStream`): Colorizer.prepare (full-resolution L + the working-size network input)
-> Colorizer.predict (batched: `batch_size` frames per call) -> the predicted ab is stabilised at
WORKING size (`TemporalSmoother`) -> Colorizer.finish (upsample ab, merge with the frame's own
full-resolution L). Only ab is predicted and smoothed: every frame keeps its exact L, so detail,
motion and grain are the source's own.

Stabilisation (`TemporalSmoother`): an exponential moving average of ab across frames,
    state_t = w * state_{t-1} + (1 - w) * ab_t,   w = temporal * max(0, 1 - |ΔL| / MOTION_L)  per pixel,
where ΔL is the pixel's working-size L change since the previous frame. Still pixels are smoothed
with the full `temporal` strength; pixels whose L changed by MOTION_L or more (something moved
there) take the new prediction at once, so moving objects leave no colour trails behind them (a
plain EMA smears them, and its decaying trails are flicker on the still pixels they cross: on the
test clips it removed less flicker than the gated one). The state restarts (w = 0 everywhere) at
the first frame and at scene cuts (`CutDetector`): a frame whose mean
|ΔL| over the picture exceeds `cut_threshold` (L units, 0..100) and is also CUT_RATIO times the
shot's recent level of change (so a fast pan, busy all along, is not cut into pieces). A missed cut
costs little: its pixels changed L, so the motion gate already takes the new shot's colours there.
temporal = 0 turns smoothing off.

Flicker metric (`flicker`, `FlickerMeter`): the mean |Δab| (Euclidean, Lab units) between
consecutive frames over the pixels whose L barely changed (|ΔL| < STILL_L = 1), frame pairs across
a detected cut (the same CutDetector, on the full-resolution L) left out. On still pixels the true
colour does not change, so whatever ab change remains there is flicker. Its floor is not 0: 8-bit
RGB rounding alone moves ab a little where L changes by less than 1 (about 0.3 on grainy clips).
`measure` reports it with the colour accuracy (mean CIEDE2000 against the colour original) so the
trade-off is visible.

Files (`colorize_video`): same resolution, frame timestamps (so frame rate, frame count and
variable frame rate), audio and subtitle packets remuxed untouched (re-encoded only when the
output container cannot hold the codec), container and stream metadata (title, language,
handler), and the rotation (display matrix) copied into the output stream: pixels are stored as
in the source and players rotate them, as they did the source. Streaming: memory stays flat with
the film's length (one batch of frames in flight, a few colorized frames queued for the encoder,
which runs in its own thread). The output is written to a temporary file
beside the target (imageio.temp_name) and os.replace'd at the end: an interrupted or failed run
leaves no half-written file under the final name. A file cut short (truncated download) gives
what decodes, with a note saying where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labcolor.core import color, imageio, metrics
from labcolor.core.errors import ConfigError, InputError, ModelOutputError, OutputError
from labcolor.core.header import DEFAULT_MAX_PIXELS
from labcolor.core.imageio import VIDEO_SUFFIXES
from labcolor.runtime.folder import one_line
from labcolor.runtime.jobs import Job
from labcolor.runtime.preprocess import Prepared
from labcolor.runtime.results import FileResult

if TYPE_CHECKING:
    from labcolor.runtime.colorizer import Colorizer

log = logging.getLogger(__name__)

AV_MISSING = "video needs PyAV (it bundles FFmpeg): pip install 'labcolor[video]'"

# Output container by the target's extension (the file is first written under a temporary name,
# so the muxer is always named explicitly).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}

DEFAULT_TEMPORAL = 0.5
CUT_THRESHOLD = 8.0  # mean |ΔL| (L units, 0..100) between consecutive frames above which a cut may be declared...
CUT_RATIO = 3.0  # ... when it is also this many times the shot's recent mean |ΔL| (an average over its last frames)
MOTION_L = 8.0  # |ΔL| at which a pixel counts as moved: its smoothing weight falls linearly to 0 there
STILL_L = 1.0  # flicker metric: a pixel is still when its |ΔL| between two frames is below this

# Encoder quality when none is given: CRF (lower = better; 18 is "visually lossless" for x264),
# VP9's recommended constant-quality value for HD, and MPEG-4 part 2's fixed quantiser (2 best .. 31).
DEFAULT_QUALITY = {"libx264": 18, "libx264rgb": 18, "libx265": 22, "libvpx-vp9": 31, "mpeg4": 3}
_FF_QP2LAMBDA = 118  # FFmpeg's quantiser -> lambda factor (global_quality) for fixed-quality MPEG-4
# Encoder speed: at 1080p on a CPU the encoder is the slowest step (on scripts/bench_video.py's grainy 1080p
# clip at CRF 18, 2 busy CPUs: x264 "medium" took 282 ms a frame, "veryfast" 151 ms, for files 2% larger).
# VP9's default speed is far slower still; cpu-used 4 with row threading is the usual "good" setting.
DEFAULT_OPTIONS = {"libx264": {"preset": "veryfast"}, "libx264rgb": {"preset": "veryfast"},
                   "libx265": {"preset": "fast"}, "libvpx-vp9": {"cpu-used": "4", "row-mt": "1"}}
_WRITE_QUEUE = 6  # colorized frames waiting for the encoder thread (at 1080p, 6 MB each)
_EARLY_PACKETS = 20000  # audio/subtitle packets held back until the first video frame decodes
# Metadata written by muxers themselves: copying it would describe the source's encoding, not ours.
_MUXER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration", "number_of_frames",
               "number_of_bytes", "bps", "_statistics_tags", "_statistics_writing_app", "_statistics_writing_date_utc",
               "vendor_id"}


class VideoError(InputError):
    """A file is not a video labcolor can read: not a video at all, no video stream, no decoder, nothing decodable."""


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise ConfigError(AV_MISSING) from exc
    return av


def available() -> bool:
    """Whether video support (PyAV) is installed."""
    try:
        _av()
    except ConfigError:
        return False
    return True


def is_video_path(path: str | os.PathLike) -> bool:
    """Whether `path`'s extension is one a folder walk should treat as a video (VIDEO_SUFFIXES)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


# ----------------------------------------------------------------------------- temporal smoothing


class CutDetector:
    """Scene cuts from the mean |ΔL| between consecutive frames, fed one value per frame pair.

    A cut is a jump: above `threshold` (L units) and `ratio` times the recent level (an exponential average
    of the previous pairs' values, weight 0.3 on the newest). Measured at working size on generated pans
    (scripts/bench_video.py) a shot's pairs give 2-4 and a cut 13-14; the test clips 1-2 and 43.
    """

    def __init__(self, threshold: float = CUT_THRESHOLD, ratio: float = CUT_RATIO) -> None:
        if threshold <= 0 or ratio < 1:
            raise ConfigError(f"cut_threshold must be positive and the ratio >= 1, got {threshold} and {ratio}")
        self.threshold, self.ratio = float(threshold), float(ratio)
        self.level: float | None = None

    def __call__(self, change: float) -> bool:
        cut = change > self.threshold and (self.level is None or change > self.ratio * self.level)
        # Every value feeds the level, the cuts' too: a busy shot after a calm one is cut once, not at each frame.
        self.level = change if self.level is None else 0.7 * self.level + 0.3 * change
        return cut

    def reset(self) -> None:
        self.level = None


class TemporalSmoother:
    """Motion-gated exponential moving average of the predicted ab at working size (see the module docstring).

    strength: `temporal`, in [0, 1): the weight of the past on still pixels; 0 = off.
    cut_threshold: mean |ΔL| (L units) over the picture above which a frame may be a scene cut (CutDetector).
    """

    def __init__(self, strength: float = DEFAULT_TEMPORAL, cut_threshold: float = CUT_THRESHOLD,
                 motion_l: float = MOTION_L) -> None:
        if not 0.0 <= strength < 1.0:
            raise ConfigError(f"temporal must be in [0, 1) (0 = no smoothing), got {strength}")
        if motion_l <= 0:
            raise ConfigError(f"motion_l must be positive, got {motion_l}")
        self.strength = float(strength)
        self.cuts = CutDetector(cut_threshold)
        self.motion_l = float(motion_l)
        self.reset()

    def reset(self) -> None:
        self._l: np.ndarray | None = None  # previous frame's working-size L (Lab units), padding included
        self._ab: np.ndarray | None = None  # the smoothed ab (2, ph, pw), network units
        self.cuts.reset()

    def is_cut(self, l: np.ndarray, crop: tuple[int, int]) -> bool:
        """Whether `l` starts a new shot after the previous frame (feeds the cut detector: call once per frame)."""
        if self._l is None or self._l.shape != l.shape:
            self.cuts.reset()
            return False
        h, w = crop
        return self.cuts(float(np.abs(l[:h, :w] - self._l[:h, :w]).mean()))

    def __call__(self, l: np.ndarray, ab: np.ndarray, crop: tuple[int, int]) -> tuple[np.ndarray, bool]:
        """One frame: working-size L (ph, pw) in Lab units and predicted ab (2, ph, pw) in network units ->
        (the ab to use, whether a scene cut restarted the smoothing here).

        The first frame, a frame after a cut and a frame of another working size are returned unchanged.
        """
        cut = self.is_cut(l, crop)
        if self._l is None or cut or self._l.shape != l.shape or self.strength == 0.0:
            out = ab.astype(np.float32, copy=True)
        else:
            moved = np.abs(l - self._l)
            w = np.clip(1.0 - moved / np.float32(self.motion_l), 0.0, 1.0) * np.float32(self.strength)
            assert self._ab is not None
            out = self._ab * w[None] + ab * (1.0 - w)[None]
            out = out.astype(np.float32, copy=False)
        self._l, self._ab = l, out
        return out, cut


# ----------------------------------------------------------------------------- frames in memory


@dataclass(frozen=True)
class ColorizedFrame:
    image: np.ndarray  # (H, W, 3) uint8 (or the input's dtype), RGB unless the stream was built with bgr=True
    index: int  # 0-based position in the stream
    cut: bool  # a scene cut was detected here: the smoothing restarted on this frame
    tag: Any = None  # whatever push() was given with the frame (e.g. its timestamp)


class FrameStream:
    """Consecutive frames -> colorized frames, in order, with temporal stabilisation.

    `push(frame, tag)` returns the frames finished so far (none until a batch is full), `flush()` the rest.
    Frames are predicted `batch_size` at a time (default: the colorizer's, 8 on CUDA, 1 on CPU); the
    smoothing and the merge run in order, so the result does not depend on the batch size.
    """

    def __init__(self, colorizer: Colorizer, *, temporal: float = DEFAULT_TEMPORAL,
                 cut_threshold: float = CUT_THRESHOLD, batch_size: int | None = None, bgr: bool = False,
                 saturation: float | None = None) -> None:
        self.colorizer = colorizer
        self.smoother = TemporalSmoother(temporal, cut_threshold)
        self.batch_size = colorizer.batch_size if batch_size is None else int(batch_size)
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.bgr = bgr
        self.saturation = saturation
        self.cuts: list[int] = []  # indices of the frames where a scene cut restarted the smoothing
        self._pending: list[tuple[int, Prepared, Any]] = []
        self._count = 0

    def push(self, frame: np.ndarray, tag: Any = None) -> list[ColorizedFrame]:
        item = self.colorizer.prepare(frame, bgr=self.bgr)
        done: list[ColorizedFrame] = []
        if self._pending and self._pending[0][1].net_shape != item.net_shape:
            done = self._run()
        self._pending.append((self._count, item, tag))
        self._count += 1
        if len(self._pending) >= self.batch_size:
            done += self._run()
        return done

    def flush(self) -> list[ColorizedFrame]:
        return self._run() if self._pending else []

    def _run(self) -> list[ColorizedFrame]:
        pending, self._pending = self._pending, []
        ab = self.colorizer.predict(np.stack([item.net for _, item, _ in pending]))
        scaling = self.colorizer.metadata.scaling
        out = []
        for row, (index, item, tag) in enumerate(pending):
            l_small = color.denormalize_l(item.net[0], scaling)
            smoothed, cut = self.smoother(l_small, ab[row], item.crop)
            if cut:
                self.cuts.append(index)
            image = self.colorizer.finish(item, smoothed, bgr=self.bgr, saturation=self.saturation)
            out.append(ColorizedFrame(image, index, cut, tag))
        return out


def colorize_frames(colorizer: Colorizer, frames: Iterable[np.ndarray], *, temporal: float = DEFAULT_TEMPORAL,
                    cut_threshold: float = CUT_THRESHOLD, batch_size: int | None = None, bgr: bool = False,
                    saturation: float | None = None) -> Iterator[np.ndarray]:
    """Colorize consecutive frames of one film (arrays, e.g. from your own decoder), lazily and in order.

    frames: (H, W) gray or (H, W, 3) colour arrays (uint8/uint16/float, as Colorizer.colorize takes);
    yields (H, W, 3) pictures of the same dtype, RGB (BGR with bgr=True).
    """
    stream = FrameStream(colorizer, temporal=temporal, cut_threshold=cut_threshold, batch_size=batch_size,
                         bgr=bgr, saturation=saturation)
    for frame in frames:
        for done in stream.push(frame):
            yield done.image
    for done in stream.flush():
        yield done.image


# ----------------------------------------------------------------------------- flicker and accuracy


@dataclass(frozen=True)
class Flicker:
    value: float  # mean |Δab| (Lab units) over still pixels of consecutive frames within a shot; nan if none
    pairs: int  # frame pairs measured
    cuts: int  # frame pairs left out as scene cuts
    still: float  # share of the measured pairs' pixels that counted as still (|ΔL| < STILL_L)


class FlickerMeter:
    """Feeds consecutive frames one at a time (flat memory); `result()` gives the Flicker so far."""

    def __init__(self, *, bgr: bool = False, cut_threshold: float = CUT_THRESHOLD, still_l: float = STILL_L) -> None:
        self.bgr, self.still_l = bgr, still_l
        self.detector = CutDetector(cut_threshold)
        self._prev: np.ndarray | None = None
        self._sum = 0.0
        self._still = 0
        self._pixels = 0
        self._pairs = 0
        self._cuts = 0

    def add(self, frame: np.ndarray) -> np.ndarray:
        """Adds one RGB (BGR with bgr=True) frame; returns its Lab (H, W, 3) float32 for further use."""
        lab = color.rgb_to_lab(frame, bgr=self.bgr)
        prev, self._prev = self._prev, lab
        if prev is None or prev.shape != lab.shape:
            self.detector.reset()
            return lab
        dl = np.abs(lab[..., 0] - prev[..., 0])
        if self.detector(float(dl.mean())):
            self._cuts += 1
            return lab
        still = dl < self.still_l
        dab = lab[..., 1:][still] - prev[..., 1:][still]
        self._sum += float(np.sqrt((dab * dab).sum(axis=-1)).sum())
        self._still += int(still.sum())
        self._pixels += still.size
        self._pairs += 1
        return lab

    def result(self) -> Flicker:
        value = self._sum / self._still if self._still else float("nan")
        return Flicker(value, self._pairs, self._cuts, self._still / self._pixels if self._pixels else 0.0)


def flicker(frames: Iterable[np.ndarray], *, bgr: bool = False, cut_threshold: float = CUT_THRESHOLD,
            still_l: float = STILL_L) -> Flicker:
    """The flicker of consecutive RGB frames (arrays, or read_frames(path)): mean |Δab| over still pixels
    (|ΔL| < still_l), frame pairs across a cut (CutDetector on mean |ΔL|) left out. See the module docstring."""
    meter = FlickerMeter(bgr=bgr, cut_threshold=cut_threshold, still_l=still_l)
    for frame in frames:
        meter.add(frame)
    return meter.result()


@dataclass(frozen=True)
class VideoScore:
    flicker: Flicker  # of the colorized frames
    de00: float | None  # mean CIEDE2000 of the colorized frames against the colour original (None without one)
    frames: int


def measure(colorized: str | os.PathLike | Iterable[np.ndarray],
            original: str | os.PathLike | Iterable[np.ndarray] | None = None, *,
            cut_threshold: float = CUT_THRESHOLD) -> VideoScore:
    """Flicker of `colorized` and, given the colour `original`, its mean ΔE00 against it, frame by frame.

    Both are video files or iterables of RGB uint8 frames of the same shapes; read in lockstep, one
    frame of each in memory. A different frame count raises InputError.
    """
    frames = read_frames(colorized) if isinstance(colorized, (str, os.PathLike)) else iter(colorized)
    truth = None if original is None else (
        read_frames(original) if isinstance(original, (str, os.PathLike)) else iter(original))
    meter = FlickerMeter(cut_threshold=cut_threshold)
    total, count = 0.0, 0
    for frame in frames:
        lab = meter.add(frame)
        if truth is not None:
            ref = next(truth, None)
            if ref is None:
                raise InputError(f"the colorized video has more frames than the original ({count + 1}+)")
            if ref.shape != frame.shape:
                raise InputError(f"frame {count}: shapes differ, {frame.shape} vs {ref.shape}")
            total += float(metrics.ciede2000(lab, color.rgb_to_lab(ref)).mean())
        count += 1
    if truth is not None and next(truth, None) is not None:
        raise InputError(f"the original has more frames than the colorized video ({count})")
    de00 = total / count if truth is not None and count else None
    return VideoScore(meter.result(), de00, count)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    container: str  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # video codec, e.g. "h264"
    width: int
    height: int
    frame_rate: Fraction | None  # average frame rate
    frames: int | None  # from the header (exact in MP4/MOV), else estimated from the duration; None if unknown
    duration: float | None  # seconds
    time_base: Fraction
    audio: tuple[str, ...]  # codec of each audio track


def _open(path: Path) -> tuple[Any, Any]:
    """(input container, its video stream); VideoError naming the file for anything that is not a readable video."""
    av = _av()
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video")
    try:
        container = av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        hint = ""
        if path.suffix.lower() in (".mp4", ".m4v", ".mov") and path.stat().st_size > 0:
            hint = "; an MP4/MOV cut short (interrupted download or copy) can lose its index and be unreadable"
        raise VideoError(f"{path}: not a video labcolor can read ({_ff_message(exc)}{hint})") from exc
    except OSError as exc:
        raise VideoError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        name = container.format.name or ""
        if name == "image2" or name.endswith("_pipe"):
            raise VideoError(f"{path}: a still picture ({name.removesuffix('_pipe')}), not a video")
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            others = ", ".join(f"{s.type} {s.codec_context.name if s.codec_context else '?'}"
                               for s in container.streams) or "no streams at all"
            raise VideoError(f"{path}: no video stream ({others})")
        stream = streams[0]
        if stream.codec_context is None:
            raise VideoError(f"{path}: no decoder for its video codec in this PyAV build")
        return container, stream
    except BaseException:
        container.close()
        raise


def _ff_message(exc: BaseException) -> str:
    """FFmpeg's reason without the file name PyAV appends (the caller names the file once)."""
    strerror = getattr(exc, "strerror", None)
    return " ".join(str(strerror or exc).split())


def _rate(stream: Any) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


@dataclass(frozen=True)
class _Promise:
    """What a header says about the video stream's length."""

    frames: int | None  # stored (MP4/MOV: exact) or duration x average rate (an estimate)
    exact: bool  # frames was stored in the header
    duration: float | None  # seconds
    end: float | None  # presentation time (s) where the stream ends

    def short(self, decoded: int, decoded_end: float | None, rate: Fraction) -> bool:
        """Whether decoding ended clearly before what the header promises (a truncated file).

        decoded_end: where the last decoded frame ends (its time plus its duration)."""
        if self.exact and self.frames is not None:
            return decoded < self.frames - max(2, round(0.02 * self.frames))
        if self.end is not None and decoded_end is not None:  # VFR-safe: compare times, not estimated counts
            return decoded_end < self.end - max(1.5 / float(rate), 0.01 * (self.duration or 0.0))
        return False


def _expected(container: Any, stream: Any, rate: Fraction | None) -> _Promise:
    duration = start = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    elif container.duration:
        duration = container.duration / 1_000_000
        start = container.start_time / 1_000_000 if container.start_time is not None else 0.0
    end = start + duration if duration is not None and start is not None else None
    if stream.frames:
        return _Promise(int(stream.frames), True, duration, end)
    return _Promise(round(duration * rate) if duration and rate else None, False, duration, end)


def probe(path: str | os.PathLike) -> VideoInfo:
    """What a video file's header says (no decoding beyond what FFmpeg needs to open it)."""
    path = Path(path)
    container, stream = _open(path)
    with contextlib.closing(container):
        rate = _rate(stream)
        promise = _expected(container, stream, rate)
        cc = stream.codec_context
        audio = tuple(a.codec_context.name for a in container.streams.audio if a.codec_context is not None)
        return VideoInfo(path, container.format.name, cc.name, cc.width, cc.height, rate, promise.frames,
                         promise.duration, Fraction(stream.time_base), audio)


def _rgb(frame: Any, reformatter: Any) -> np.ndarray:
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


def read_frames(path: str | os.PathLike, *, rotate: bool = False) -> Iterator[np.ndarray]:
    """The frames of a video file as (H, W, 3) uint8 RGB arrays, in presentation order.

    rotate: apply the stream's rotation metadata (as players do); default: the pixels as stored.
    Stops quietly where a damaged file stops decoding.
    """
    av = _av()
    container, stream = _open(Path(path))
    stream.thread_type = "AUTO"
    reformatter = av.video.reformatter.VideoReformatter()
    with contextlib.closing(container):
        try:
            for frame in container.decode(stream):
                rgb = _rgb(frame, reformatter)
                turns = round((frame.rotation or 0) / 90) % 4 if rotate else 0
                yield np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb
        except av.error.FFmpegError as exc:
            log.debug("%s: decoding stopped: %s", path, _ff_message(exc))


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class VideoProgress:
    frames: int  # frames colorized so far (handed to the encoder)
    total: int | None  # frames the header promises (None when unknown; an estimate outside MP4/MOV)
    fps: float  # frames per second so far (processing speed)
    seconds: float  # wall time so far


@dataclass(frozen=True)
class VideoResult:
    source: Path
    target: Path
    frames: int  # frames written (every frame that decoded)
    expected_frames: int | None  # what the header promised
    frame_rate: Fraction | None  # the source's average frame rate, kept
    width: int
    height: int
    codec: str  # the video encoder used
    audio: tuple[str, ...]  # per audio track: "aac (copied)", "pcm_s16le -> aac", "dropped: ..."
    cuts: tuple[int, ...]  # frames where a scene cut restarted the smoothing
    stopped_at: float | None  # seconds into the film where decoding stopped early (damaged/truncated); None if whole
    notes: tuple[str, ...]  # everything the user should know (partial decode, dropped streams, 10-bit source...)
    seconds: float  # wall time

    @property
    def complete(self) -> bool:
        return self.stopped_at is None

    @property
    def fps(self) -> float:
        """Processing speed, frames per second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def note(self) -> str:
        """The notes on one line (empty when there is nothing to say)."""
        return "; ".join(self.notes)


def default_codec(target: str | os.PathLike) -> str:
    """The encoder used when none is chosen: VP9 for .webm; else H.264 (libx264, yuv420p), MPEG-4 part 2
    when this FFmpeg build has no libx264."""
    av = _av()
    if Path(target).suffix.lower() == ".webm":
        return "libvpx-vp9"
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _container_format(target: Path) -> str:
    fmt = CONTAINERS.get(target.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{target}: unknown video extension {target.suffix or '(none)'!r}; use one of "
                          f"{', '.join(sorted(CONTAINERS))}")
    return fmt


def _check_codec(av: Any, codec: str, fmt: str, target: Path) -> Any:
    try:
        encoder = av.codec.Codec(codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError) as exc:
        raise ConfigError(f"unknown video encoder {codec!r} (e.g. libx264, libx264rgb, libx265, libvpx-vp9, mpeg4, "
                          "ffv1)") from exc
    if encoder.type != "video":
        raise ConfigError(f"{codec!r} is a {encoder.type} encoder, not a video one")
    with av.open(os.devnull, "w", format=fmt) as probe_out:
        if codec not in probe_out.supported_codecs and encoder.name not in probe_out.supported_codecs:
            raise ConfigError(f"{target.suffix} files cannot hold {codec} video; choose another codec or extension")
    return encoder


def _pixel_format(encoder: Any, width: int, height: int) -> str:
    names = [f.name for f in encoder.video_formats or []]
    if not names:
        return "yuv420p"
    for rgb in ("rgb24", "bgr24", "bgr0", "gbrp"):  # RGB encoders (libx264rgb): no YUV rounding at all
        if rgb in names and names[0] in ("rgb24", "bgr24", "bgr0", "gbrp"):
            return rgb
    odd = width % 2 or height % 2
    if "yuv420p" in names and not odd:
        return "yuv420p"
    if "yuv444p" in names:
        return "yuv444p"
    return names[0]


# FFmpeg's AVColorSpace tags of decoded frames -> the swscale matrix that decoded them.
_SWS_SPACE = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def _encoder_options(encoder: str, quality: int | None, stream: Any) -> dict[str, str]:
    options = dict(DEFAULT_OPTIONS.get(encoder, {}))
    q = DEFAULT_QUALITY.get(encoder) if quality is None else int(quality)
    if q is None:
        return options  # other encoders: their own defaults; `options` sets anything
    if encoder == "mpeg4":
        stream.codec_context.qscale = True
        stream.codec_context.global_quality = max(1, min(31, q)) * _FF_QP2LAMBDA
    elif encoder == "libvpx-vp9":
        options.update({"crf": str(q), "b": "0"})  # b=0: constant quality, no bitrate cap
    elif encoder in ("libx264", "libx264rgb", "libx265"):
        options["crf"] = str(q)
    return options


def _tags(metadata: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k.lower() not in _MUXER_TAGS and not k.startswith("_STATISTICS")}


class _Output:
    """The output container: created at the first decoded frame (rotation and colour tags come from it), then
    video frames encoded and other streams' packets remuxed as they come."""

    def __init__(self, av: Any, inp: Any, vin: Any, target: Path, temp: Path, fmt: str, encoder: Any,
                 quality: int | None, options: dict[str, str] | None, rate: Fraction) -> None:
        self.av, self.inp, self.vin, self.target, self.temp = av, inp, vin, target, temp
        self.fmt, self.encoder, self.quality, self.options, self.rate = fmt, encoder, quality, options, rate
        self.out: Any = None
        self.video: Any = None
        self.tracks: dict[int, tuple[Any, Any, bool]] = {}  # input stream index -> (input, output, copy)
        self.audio_notes: list[str] = []
        self.notes: list[str] = []
        self.early: list[Any] = []  # packets of other streams before the output exists
        self.reformatter = av.video.reformatter.VideoReformatter()  # used by the writer thread only
        self.last_pts: int | None = None
        self.renumbered = 0
        self.written = 0  # frames handed to the writer
        self.queue: queue.Queue = queue.Queue(maxsize=_WRITE_QUEUE)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, first: Any) -> None:
        av = self.av
        out = av.open(str(self.temp), "w", format=self.fmt)
        self.out = out
        out.metadata.update(_tags(dict(self.inp.metadata)))
        width, height = first.width, first.height
        video = out.add_stream(self.encoder.name, rate=self.rate)
        video.width, video.height = width, height
        self.pix_fmt = _pixel_format(self.encoder, width, height)
        video.pix_fmt = self.pix_fmt
        src_tb = Fraction(self.vin.time_base)
        # AVI has no timestamps (a frame slot per 1/rate); MPEG-4 part 2 caps the time base at 65535 ticks/s.
        if self.fmt == "avi" or (self.encoder.name == "mpeg4" and src_tb.denominator > 65535):
            self.time_base = (1 / self.rate).limit_denominator(65535)
        else:
            self.time_base = src_tb
        video.time_base = self.time_base
        video.codec_context.time_base = self.time_base
        video.thread_type = "AUTO"
        rgb_out = self.pix_fmt in ("rgb24", "bgr24", "bgr0", "gbrp")
        if not rgb_out:  # the same matrix and range the decoder used, and the same tags for players
            for attr in ("colorspace", "color_range", "color_primaries", "color_trc"):
                value = getattr(first, attr, 0)
                if value:
                    with contextlib.suppress(AttributeError, ValueError, TypeError):
                        setattr(video.codec_context, attr, value)
        self.space = _SWS_SPACE.get(int(first.colorspace or 0), "ITU601")
        self.range = int(first.color_range or 0) or 1  # unspecified YUV is studio range (MPEG), as swscale assumes
        options = _encoder_options(self.encoder.name, self.quality, video)
        options.update(self.options or {})
        video.codec_context.options = options
        rotation = first.rotation or 0
        if rotation and hasattr(video, "set_display_rotation"):  # PyAV 18
            video.set_display_rotation(rotation)
        elif rotation:
            self.notes.append(f"rotation metadata ({rotation}°) not kept: this PyAV cannot write it (pip install "
                              "'av>=18.1'); the frames are stored unrotated, as in the source")
        video.metadata.update(_tags(dict(self.vin.metadata)))
        self.video = video
        if max((c.bits for c in first.format.components), default=8) > 8:
            self.notes.append(f"{first.format.name} source written as 8-bit {self.pix_fmt}")
        if self.pix_fmt == "yuv444p" and (width % 2 or height % 2):
            self.notes.append(f"odd frame size {width}x{height}: written as yuv444p (some players need even sizes)")
        for stream in self.inp.streams:
            if stream.index == self.vin.index or stream.type not in ("audio", "subtitle"):
                continue
            self._add_track(stream)
        try:
            out.start_encoding()
        except self.av.error.FFmpegError as exc:
            raise OutputError(f"{self.target}: cannot start writing ({_ff_message(exc)})") from exc
        self.thread = threading.Thread(target=self._work, name="labcolor-video-writer", daemon=True)
        self.thread.start()
        early, self.early = self.early, []
        for packet in early:
            self.packet(packet)

    def _add_track(self, stream: Any) -> None:
        out = self.out
        name = stream.codec_context.name if stream.codec_context is not None else (stream.name or "?")
        what = f"{stream.type} track {stream.index} ({name})"
        if name in out.supported_codecs:
            target = out.add_stream_from_template(stream)
            target.metadata.update(_tags(dict(stream.metadata)))
            self.tracks[stream.index] = (stream, target, True)
            if stream.type == "audio":
                self.audio_notes.append(f"{name} (copied)")
            return
        if stream.type == "audio" and stream.codec_context is not None and out.default_audio_codec != "none":
            codec = "libopus" if self.fmt == "webm" and "libopus" in self.av.codecs_available else out.default_audio_codec
            rate = stream.codec_context.sample_rate
            rates = self.av.codec.Codec(codec, "w").audio_rates or ()
            if rates and rate not in rates:  # e.g. Opus: 48 kHz and divisors only
                rate = min(rates, key=lambda r: (r < rate, abs(r - rate)))
            target = out.add_stream(codec, rate=rate)
            with contextlib.suppress(AttributeError, ValueError):
                target.layout = stream.codec_context.layout.name
            target.metadata.update(_tags(dict(stream.metadata)))
            self.tracks[stream.index] = (stream, target, False)
            self.audio_notes.append(f"{name} -> {target.codec_context.name}")
            self.notes.append(f"{what} re-encoded to {target.codec_context.name}: {self.target.suffix} cannot hold "
                              f"{name} (keep it as is with .mkv)")
            return
        if stream.type == "audio":
            self.audio_notes.append(f"dropped: {name}")
        self.notes.append(f"{what} dropped: {self.target.suffix} cannot hold it (.mkv can hold most tracks)")

    # The container belongs to the writer thread from start() on: the caller's thread decodes and colorizes
    # the next frames while this one converts, encodes and muxes (PyAV releases the GIL inside FFmpeg), through
    # a short queue, so memory stays flat. An error there is raised again in the caller's thread.

    def packet(self, packet: Any) -> None:
        """A packet of an audio or subtitle stream: copied, re-encoded, or dropped (in the writer thread)."""
        if self.out is None:
            if len(self.early) >= _EARLY_PACKETS:
                raise VideoError(f"{self.inp.name}: no video frame decodes within the first {_EARLY_PACKETS} packets")
            self.early.append(packet)
            return
        if packet.stream.index in self.tracks:
            self._put(("packet", packet))

    def frame(self, rgb: np.ndarray, pts: int | None, src_tb: Fraction) -> None:
        """One colorized RGB frame and its source timestamp (in src_tb units; None when the source had none)."""
        step = max(1, round(1 / (self.rate * self.time_base)))
        if pts is None:
            out_pts = 0 if self.last_pts is None else self.last_pts + step
        else:
            out_pts = round(Fraction(pts) * src_tb / self.time_base)
        if self.last_pts is not None and out_pts <= self.last_pts:
            out_pts = self.last_pts + 1
            self.renumbered += 1
        elif pts is None and self.last_pts is not None:
            self.renumbered += 1
        self.last_pts = out_pts
        self._put(("frame", rgb, out_pts))
        self.written += 1

    def _put(self, item: tuple[Any, ...] | None) -> None:
        while True:
            self._raise()
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # keep draining so the caller never blocks; it raises the error at its next put
            try:
                if item[0] == "frame":
                    self._encode(item[1], item[2])
                else:
                    self._remux(item[1])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self.error = exc

    def _encode(self, rgb: np.ndarray, pts: int) -> None:
        frame = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.pix_fmt != "rgb24":
            if self.pix_fmt in ("bgr24", "bgr0", "gbrp"):
                frame = self.reformatter.reformat(frame, format=self.pix_fmt)
            else:
                frame = self.reformatter.reformat(frame, format=self.pix_fmt, dst_colorspace=self.space,
                                                  dst_color_range=self.range)
        frame.pts = pts
        frame.time_base = self.time_base
        self.out.mux(self.video.encode(frame))

    def _remux(self, packet: Any) -> None:
        source, target, copy = self.tracks[packet.stream.index]
        if copy:
            if packet.dts is None:
                return  # a demuxer's flush packet
            packet.stream = target
            self.out.mux(packet)
            return
        try:
            frames = source.decode(packet)
        except self.av.error.FFmpegError:
            return  # a damaged audio packet: a short gap, as a player would give
        for frame in frames:
            self.out.mux(target.encode(frame))

    def _stop_writer(self) -> None:
        if self.thread is not None:
            if self.thread.is_alive():
                self.queue.put(None)  # the writer drains the queue, so this never waits long
                self.thread.join()
            self.thread = None

    def finish(self) -> None:
        """Flush the encoders and close the file (raises what went wrong in the writer thread)."""
        self._stop_writer()
        self._raise()
        self.out.mux(self.video.encode(None))
        for source, target, copy in self.tracks.values():
            if not copy:
                with contextlib.suppress(self.av.error.FFmpegError):
                    for frame in source.decode(None):
                        self.out.mux(target.encode(frame))
                self.out.mux(target.encode(None))
        if self.renumbered:
            self.notes.append(f"{self.renumbered} frame(s) had missing or out-of-order timestamps: renumbered")
        self.out.close()
        self.out = None

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stop_writer()
        if self.out is not None:
            with contextlib.suppress(Exception):
                self.out.close()
            self.out = None


def colorize_video(
    colorizer: Colorizer,
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    temporal: float = DEFAULT_TEMPORAL,
    codec: str | None = None,
    quality: int | None = None,
    options: dict[str, str] | None = None,
    cut_threshold: float = CUT_THRESHOLD,
    batch_size: int | None = None,
    saturation: float | None = None,
    progress: Callable[[VideoProgress], None] | None = None,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> VideoResult:
    """Colorize a video file into `target` (its extension picks the container: .mp4 .m4v .mov .mkv .webm .avi).

    temporal: colour smoothing across frames, 0 (off) .. <1 (see TemporalSmoother); 0.5 by default.
    codec: video encoder (default_codec: libx264 yuv420p, libvpx-vp9 for .webm, mpeg4 without libx264);
        e.g. "libx264rgb" (RGB, lossless with quality=0), "libx265", "ffv1" (lossless, .mkv/.avi), "mpeg4".
    quality: the encoder's constant-quality value: CRF for libx264/libx264rgb (default 18) / libx265 (22) /
        libvpx-vp9 (31), the quantiser 2..31 for mpeg4 (3); lower is better and larger. options: further
        encoder options (e.g. {"preset": "slow"}), applied last.
    batch_size: frames per network call (default: the colorizer's; 8 on CUDA).
    saturation: colour strength (default: the colorizer's).
    progress: called after each written frame with a VideoProgress (raise from it to cancel: the
        temporary output is removed and the exception propagates).
    max_pixels: refuse frames larger than this from the header, before decoding (None: no limit), as for pictures.

    Raises VideoError (an InputError) naming the file when it is not a readable video (not a video,
    a still picture, audio only, no decoder, no frame decodes); ConfigError for an unusable codec or
    extension or a missing PyAV; OutputError when the target exists (without overwrite), is the
    source, or cannot be written; ModelOutputError when the model's output is unusable. A file that
    stops decoding part-way (truncated, damaged) is not an error: what decoded is written and
    `stopped_at` / `notes` say where it stopped.
    """
    av = _av()
    started = time.perf_counter()
    source, target = Path(source), Path(target)
    fmt = _container_format(target)
    encoder = _check_codec(av, codec or default_codec(target), fmt, target)
    if quality is not None and quality < 0:
        raise ConfigError(f"quality must be >= 0, got {quality}")
    stream = FrameStream(colorizer, temporal=temporal, cut_threshold=cut_threshold, batch_size=batch_size,
                         saturation=saturation)  # checks temporal, cut_threshold and batch_size before any work
    if target.exists() and not overwrite:
        raise OutputError(f"{target} exists (overwrite it with overwrite=True / --overwrite)")
    if source.exists() and target.exists() and os.path.samefile(source, target):
        raise OutputError(f"{target}: the output would replace its own input")
    inp, vin = _open(source)
    with contextlib.closing(inp):
        vin.thread_type = "AUTO"
        frame_rate = _rate(vin)
        rate = frame_rate or Fraction(25)
        width, height = vin.codec_context.width, vin.codec_context.height
        if max_pixels is not None and width * height > max_pixels:
            raise VideoError(f"{source}: frames of {width}x{height} ({width * height / 1e6:.0f} megapixels) exceed "
                             f"the limit of {max_pixels / 1e6:g} megapixels")
        promise = _expected(inp, vin, rate)
        expected = promise.frames
        src_tb = Fraction(vin.time_base)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder of {target}: {exc.strerror or exc}") from exc
        imageio.remove_stale_temps(target.parent)
        temp = imageio.temp_name(target)
        output = _Output(av, inp, vin, target, temp, fmt, encoder, quality, options, rate)
        reformatter = av.video.reformatter.VideoReformatter()
        decoded = 0
        damaged = 0
        stop: str | None = None  # why the demuxer stopped early (FFmpeg's reason)
        last_time: float | None = None  # presentation time of the last decoded frame (s)
        last_end: float | None = None  # ... plus its duration

        def write(done: list[ColorizedFrame]) -> None:
            for item in done:
                output.frame(item.image, item.tag, src_tb)
                if progress is not None:
                    spent = time.perf_counter() - started
                    progress(VideoProgress(output.written, expected, output.written / spent if spent > 0 else 0.0,
                                           spent))

        def take(frames: list[Any]) -> None:
            nonlocal decoded, last_time, last_end
            for frame in frames:
                if output.out is None:
                    output.start(frame)
                rgb = _rgb(frame, reformatter)
                decoded += 1
                if frame.time is not None:
                    last_time = float(frame.time)
                    length = frame.duration * frame.time_base if frame.duration and frame.time_base else 1 / rate
                    last_end = last_time + float(length)
                write(stream.push(rgb, frame.pts))

        try:
            wanted = [vin, *[s for s in inp.streams if s.type in ("audio", "subtitle")]]
            packets = inp.demux(wanted)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    stop = _ff_message(exc)
                    break
                if packet.stream.index != vin.index:
                    output.packet(packet)
                    continue
                try:
                    frames = vin.decode(packet)
                except av.error.FFmpegError as exc:
                    damaged += 1
                    log.debug("%s: a damaged video packet: %s", source, _ff_message(exc))
                    continue
                take(frames)
            with contextlib.suppress(av.error.FFmpegError):
                take(vin.decode(None))  # frames still in the decoder (after an early stop too)
            write(stream.flush())
            if decoded == 0:
                why = f" ({stop})" if stop else ""
                raise VideoError(f"{source}: no video frame could be decoded{why}")
            output.finish()
            os.replace(temp, target)
        except av.error.FFmpegError as exc:  # from the encoder or the muxer: the output's problem
            raise OutputError(f"cannot write {target}: {_ff_message(exc)}") from exc
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        finally:
            output.abort()
            with contextlib.suppress(OSError):
                temp.unlink()

    notes = list(output.notes)
    stopped_at = None
    if stop is not None:
        stopped_at = last_time if last_time is not None else 0.0
        notes.insert(0, f"decoding stopped at {stopped_at:.2f} s after {decoded} frame(s) ({stop}): "
                        "the rest of the file is missing or damaged; the frames before were written")
    elif promise.short(decoded, last_end, rate):
        stopped_at = last_time if last_time is not None else 0.0
        of = f"{decoded} of {expected} frames" if promise.exact else f"{decoded} frames"
        length = f" of {promise.end:.2f} s" if promise.end is not None else ""
        notes.insert(0, f"the file ends early: {of} decoded, up to {stopped_at:.2f} s{length}; truncated? "
                        "the frames decoded were written")
    if damaged:
        notes.append(f"{damaged} damaged video packet(s) skipped")
    seconds = time.perf_counter() - started
    log.debug("%s -> %s: %d frames in %.1f s, cuts at %s", source, target, decoded, seconds, stream.cuts)
    return VideoResult(source=source, target=target, frames=output.written, expected_frames=expected,
                       frame_rate=frame_rate, width=width, height=height,
                       codec=encoder.name, audio=tuple(output.audio_notes), cuts=tuple(stream.cuts),
                       stopped_at=stopped_at, notes=tuple(notes), seconds=seconds)


def colorize_video_job(colorizer: Colorizer, job: Job, *, overwrite: bool = False, **options: Any) -> FileResult:
    """One video of a folder run (a runtime.jobs Job) -> a FileResult, as folder.process_job does for pictures:
    every expected problem is a "failed" result with a one-line reason, an existing output is "skipped",
    a partial decode is "done" with the note. `options` go to colorize_video (temporal, codec, quality, ...)."""
    started = time.perf_counter()
    if job.problem or job.target is None:
        return FileResult(job.source, job.target, "failed", job.problem or "no output file")
    if not overwrite and job.target.exists():
        return FileResult(job.source, job.target, "skipped", "output exists")
    try:
        result = colorize_video(colorizer, job.source, job.target, overwrite=overwrite, **options)
    except ModelOutputError as exc:
        return FileResult(job.source, job.target, "failed", one_line(exc), time.perf_counter() - started, True)
    except (InputError, OutputError) as exc:
        return FileResult(job.source, job.target, "failed", one_line(exc), time.perf_counter() - started)
    return FileResult(job.source, job.target, "done", result.note, result.seconds)

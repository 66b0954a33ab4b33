"""Video colorization (issue 17): runtime.video on tiny clips generated here with PyAV (64x48, 24-40 frames):
what a file keeps (size, frame rate, frame count, timestamps, audio, metadata, rotation), the exact L of every
frame, temporal smoothing (less flicker, a reset at scene cuts), the flicker metric, bad inputs, atomic output."""

from __future__ import annotations

import shutil
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from labcolor.core import color
from labcolor.core.errors import ConfigError, InputError, LabcolorError, OutputError
from labcolor.runtime import Colorizer, video
from labcolor.runtime.jobs import Job
from tests import runtime_fixtures as fx

av = pytest.importorskip("av", reason="video needs PyAV (labcolor[video])")

H, W = 48, 64
FPS = 24
CUT = 20  # the scene cut of the generated clips: frame 20 starts the second shot


# ----------------------------------------------------------------------------- clips, written without the code under test


def scene_frames(n: int = 32, *, cut_at: int | None = CUT, grain: float = 2.0, seed: int = 0) -> list[np.ndarray]:
    """RGB uint8 frames: a coloured gradient with a square sliding across it and film grain; at `cut_at` a
    second shot (other palette, much darker, a circle moving the other way): mean |ΔL| there is ~25."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, W, dtype=np.float32)[None, :, None]
    y = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None]
    frames = []
    for i in range(n):
        second = cut_at is not None and i >= cut_at
        if not second:
            base = np.array([200, 150, 90], np.float32) * (1 - x) + np.array([120, 190, 220], np.float32) * x
            img = base + 20 * y
            x0 = 4 + 2 * i
            img[12:26, x0 : x0 + 12] = (210, 40, 40)
        else:
            base = np.array([30, 70, 40], np.float32) * (1 - y) + np.array([70, 40, 90], np.float32) * y
            img = base + 10 * x
            img = np.ascontiguousarray(img)
            cv2.circle(img, (W - 8 - 2 * (i - cut_at), 30), 8, (230, 210, 60), -1)
        img = img + rng.normal(0, grain, img.shape).astype(np.float32) if grain else img
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], *, codec: str = "libx264", fps: int = FPS,
               audio: str | None = "aac", rotation: int = 0, times_ms: list[int] | None = None,
               options: dict[str, str] | None = None, container_options: dict[str, str] | None = None) -> Path:
    """Encode `frames` with PyAV; optionally an audio track (a 440 Hz sine as long as the video), a rotation
    (display matrix), a title and languages, and explicit frame times in ms (variable frame rate)."""
    out = av.open(str(path), "w", options=container_options or {})
    out.metadata["title"] = "labcolor test clip"
    vs = out.add_stream(codec, rate=fps, options=options or {})
    vs.width, vs.height = frames[0].shape[1], frames[0].shape[0]
    vs.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
    vs.metadata["language"] = "eng"
    if times_ms is not None:
        vs.codec_context.time_base = Fraction(1, 1000)
        vs.time_base = Fraction(1, 1000)
    if rotation:
        vs.set_display_rotation(rotation)
    stream_audio = None
    if audio:
        stream_audio = out.add_stream(audio, rate=44100)
        stream_audio.layout = "mono"
        stream_audio.metadata["language"] = "fra"
    for i, img in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        if times_ms is not None:
            frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
        else:
            frame.pts, frame.time_base = i, Fraction(1, fps)
        out.mux(vs.encode(frame))
    out.mux(vs.encode())
    if stream_audio is not None:
        rate = 44100
        seconds = (times_ms[-1] / 1000 + 1 / fps) if times_ms is not None else len(frames) / fps
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
        step = stream_audio.codec_context.frame_size or 1024
        for k in range(0, len(samples), step):
            chunk = av.AudioFrame.from_ndarray(samples[None, k : k + step], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = rate, k
            out.mux(stream_audio.encode(chunk))
        out.mux(stream_audio.encode())
    out.close()
    return path


def decoded(path: Path) -> list[np.ndarray]:
    """RGB frames as PyAV decodes them (the same conversion the code under test uses, but called directly)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def audio_samples(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(f.samples for f in c.decode(audio=0))


@pytest.fixture(scope="module")
def mild(tmp_path_factory: pytest.TempPathFactory) -> Colorizer:
    """Tiny model with small weights: colours stay inside the sRGB gamut, so L can be compared tightly."""
    return Colorizer(fx.make_tiny_model(tmp_path_factory.mktemp("m") / "mild.onnx", gain=0.1), "cpu")


@pytest.fixture(scope="module")
def jumpy(tmp_path_factory: pytest.TempPathFactory) -> Colorizer:
    """Tiny model at half gain: ~5 ab units per L unit, so film grain and moving shapes make its colours flicker
    (at full gain its colours leave the sRGB gamut, and the clipping alone flickers)."""
    return Colorizer(fx.make_tiny_model(tmp_path_factory.mktemp("m") / "jumpy.onnx", gain=0.5), "cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MP4: H.264 + AAC, 32 frames at 24 fps, rotated 90°, a title and languages, a scene cut at frame 20."""
    return write_clip(tmp_path_factory.mktemp("clips") / "film.mp4", scene_frames(32), rotation=90)


@pytest.fixture(scope="module")
def mkv_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MKV: H.264 + PCM, 40 frames, a scene cut at frame 20."""
    return write_clip(tmp_path_factory.mktemp("clips") / "film.mkv", scene_frames(40), audio="pcm_s16le")


# ----------------------------------------------------------------------------- what a file keeps


def test_output_keeps_size_rate_frames_audio_metadata_and_rotation(mild: Colorizer, clip: Path, tmp_path: Path) -> None:
    seen: list[video.VideoProgress] = []
    result = video.colorize_video(mild, clip, tmp_path / "out.mp4", progress=seen.append)
    assert result.target.is_file() and result.complete and result.notes == ()
    assert (result.frames, result.expected_frames, result.width, result.height) == (32, 32, W, H)
    assert result.frame_rate == FPS and result.codec == "libx264" and result.audio == ("aac (copied)",)
    info = video.probe(tmp_path / "out.mp4")
    assert (info.codec, info.width, info.height, info.frames, info.frame_rate) == ("h264", W, H, 32, FPS)
    assert frame_times(tmp_path / "out.mp4") == pytest.approx(frame_times(clip), abs=1e-3)
    assert audio_samples(tmp_path / "out.mp4") == audio_samples(clip) > 44100  # copied packet for packet
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert out.metadata.get("title") == "labcolor test clip"
        assert out.streams.video[0].language == "eng" and out.streams.audio[0].language == "fra"
        assert out.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert next(out.decode(video=0)).rotation == 90  # the display matrix is kept, pixels stored as in the source
    assert [p.frames for p in seen] == list(range(1, 33)) and {p.total for p in seen} == {32}
    assert next(video.read_frames(tmp_path / "out.mp4", rotate=True)).shape == (W, H, 3)  # as players show it


def test_lightness_of_every_frame_is_the_inputs(mild: Colorizer, mkv_clip: Path, tmp_path: Path) -> None:
    # libx264rgb at quality 0 stores RGB losslessly, so what is read back is exactly what was colorized.
    result = video.colorize_video(mild, mkv_clip, tmp_path / "out.mkv", codec="libx264rgb", quality=0)
    assert result.audio == ("pcm_s16le (copied)",) and result.frames == 40
    source, out = decoded(mkv_clip), decoded(tmp_path / "out.mkv")
    assert len(out) == len(source) == 40
    l_in, l_out = color.luminance(np.stack(source)), color.luminance(np.stack(out))
    assert np.abs(l_out - l_in).max() < 0.6  # 8-bit rounding of the output's RGB, nothing more
    chroma = np.hypot(*np.moveaxis(color.rgb_to_lab(np.stack(out))[..., 1:], -1, 0))
    assert chroma.mean() > 0.5  # and the frames really were coloured
    assert audio_samples(tmp_path / "out.mkv") == audio_samples(mkv_clip)


def test_variable_frame_rate_timestamps_are_kept(mild: Colorizer, tmp_path: Path) -> None:
    times = list(np.cumsum([0] + [30 if i % 3 else 75 for i in range(29)]))  # irregular: 30 and 75 ms gaps
    for suffix in (".mkv", ".mp4"):
        source = write_clip(tmp_path / f"vfr{suffix}", scene_frames(30, cut_at=None), audio=None,
                            times_ms=[int(t) for t in times])
        result = video.colorize_video(mild, source, tmp_path / f"out{suffix}")
        assert result.frames == 30 and result.notes == ()
        assert frame_times(tmp_path / f"out{suffix}") == pytest.approx([t / 1000 for t in times], abs=1e-3)


def test_codec_choices(mild: Colorizer, mkv_clip: Path, tmp_path: Path) -> None:
    assert video.default_codec("a.mp4") == "libx264" and video.default_codec("a.webm") == "libvpx-vp9"
    result = video.colorize_video(mild, mkv_clip, tmp_path / "out.avi", codec="mpeg4", quality=4)
    assert result.frames == 40 and video.probe(tmp_path / "out.avi").codec == "mpeg4"
    # WebM cannot hold PCM: the audio is re-encoded (to Opus) rather than lost, and the note says so.
    webm = video.colorize_video(mild, mkv_clip, tmp_path / "out.webm")
    assert webm.codec == "libvpx-vp9" and webm.audio == ("pcm_s16le -> libopus",)
    assert any("re-encoded to libopus" in n for n in webm.notes)
    assert abs(audio_samples(tmp_path / "out.webm") / 48000 - audio_samples(mkv_clip) / 44100) < 0.05
    with pytest.raises(ConfigError, match="unknown video encoder"):
        video.colorize_video(mild, mkv_clip, tmp_path / "x.mp4", codec="no-such-codec")
    with pytest.raises(ConfigError, match="cannot hold libx264"):
        video.colorize_video(mild, mkv_clip, tmp_path / "x.webm", codec="libx264")
    with pytest.raises(ConfigError, match="unknown video extension"):
        video.colorize_video(mild, mkv_clip, tmp_path / "x.xyz")
    with pytest.raises(ConfigError, match="temporal"):
        video.colorize_video(mild, mkv_clip, tmp_path / "x.mp4", temporal=1.0)
    assert not list(tmp_path.glob("x.*"))


# ----------------------------------------------------------------------------- temporal stability


def test_smoothing_lowers_flicker_and_the_trade_is_measured(jumpy: Colorizer, tmp_path: Path) -> None:
    frames = scene_frames(32, grain=2.0)
    off = list(video.colorize_frames(jumpy, frames, temporal=0.0))
    on = list(video.colorize_frames(jumpy, frames, temporal=0.8))
    f_off, f_on = video.flicker(off), video.flicker(on)
    assert f_off.cuts == f_on.cuts == 1 and f_off.pairs == 30  # the pair across the cut is left out
    assert f_on.value < 0.6 * f_off.value, (f_on, f_off)
    # Both with their colour accuracy against the colour original (ΔE00), from files this time.
    source = write_clip(tmp_path / "s.mkv", frames, codec="libx264rgb", audio=None, options={"crf": "0"})
    scores = {}
    for strength in (0.0, 0.8):
        out = video.colorize_video(jumpy, source, tmp_path / f"t{strength}.mkv", codec="libx264rgb", quality=0,
                                   temporal=strength)
        scores[strength] = video.measure(out.target, frames)
    assert scores[0.8].flicker.value < 0.6 * scores[0.0].flicker.value
    assert all(s.frames == 32 and s.de00 is not None and 0 < s.de00 < 100 for s in scores.values())


def test_a_scene_cut_restarts_the_smoothing(jumpy: Colorizer, mkv_clip: Path, tmp_path: Path) -> None:
    frames = scene_frames(32)
    off = list(video.colorize_frames(jumpy, frames, temporal=0.0))
    stream = video.FrameStream(jumpy, temporal=0.8)
    on = [f.image for frame in frames for f in stream.push(frame)] + [f.image for f in stream.flush()]
    assert stream.cuts == [CUT]
    np.testing.assert_array_equal(on[0], off[0])  # the first frame: nothing to smooth with
    np.testing.assert_array_equal(on[CUT], off[CUT])  # the first frame after the cut: the plain prediction
    assert not np.array_equal(on[CUT - 1], off[CUT - 1]) and not np.array_equal(on[CUT + 1], off[CUT + 1])
    result = video.colorize_video(jumpy, mkv_clip, tmp_path / "o.mkv", temporal=0.8)
    assert result.cuts == (CUT,)


def test_batches_give_the_same_frames(jumpy: Colorizer) -> None:
    frames = scene_frames(24)
    one = list(video.colorize_frames(jumpy, frames, temporal=0.5, batch_size=1))
    four = list(video.colorize_frames(jumpy, frames, temporal=0.5, batch_size=4))
    assert len(one) == len(four) == 24
    assert max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(one, four)) <= 1


def test_moving_pixels_take_the_new_prediction() -> None:
    smoother = video.TemporalSmoother(0.9)
    l0 = np.full((16, 16), 50.0, np.float32)
    ab0, ab1 = np.zeros((2, 16, 16), np.float32), np.full((2, 16, 16), 0.2, np.float32)
    smoother(l0, ab0, (16, 16))
    l1 = l0.copy()
    l1[:, 12:] = 70.0  # a quarter moved (|ΔL| = 20 > MOTION_L); mean |ΔL| 5: no cut
    l1[:, 11] = 54.0  # a pixel column that changed by half of MOTION_L
    out, cut = smoother(l1, ab1, (16, 16))
    assert not cut
    np.testing.assert_allclose(out[:, :, :11], 0.1 * 0.2, atol=1e-6)  # still: 90% of the past
    np.testing.assert_allclose(out[:, :, 11], 0.2 * (1 - 0.9 * 0.5), atol=1e-6)  # half the smoothing weight
    np.testing.assert_allclose(out[:, :, 12:], 0.2, atol=1e-6)  # moved: the new prediction
    out, cut = smoother(l1 - 30.0, ab0, (16, 16))  # mean |ΔL| 30: above 8 and 3x the shot's level (5): a cut
    assert cut
    np.testing.assert_array_equal(out, ab0)
    with pytest.raises(ConfigError):
        video.TemporalSmoother(1.0)


def test_cut_detector_wants_a_jump() -> None:
    pan = video.CutDetector()
    assert [pan(v) for v in (9.0, 9.5, 10.0, 9.0, 11.0)] == [True, False, False, False, False]  # busy all along
    steady = video.CutDetector()
    assert [steady(v) for v in (2.0, 3.0, 2.5, 13.0, 3.0, 7.9)] == [False, False, False, True, False, False]
    calm_then_busy = video.CutDetector()  # a cut into a fast pan: one cut, not one per frame
    assert [calm_then_busy(v) for v in (2.0, 2.0, 12.0, 10.0, 11.0, 10.0)] == [False, False, True, False, False, False]


def test_flicker_metric_counts_still_pixels_and_skips_cuts() -> None:
    def rgb(lab: tuple[float, float, float]) -> np.ndarray:
        return color.lab_to_rgb(np.full((8, 8, 3), lab, np.float32))

    a, b = rgb((60.0, 20.0, 0.0)), rgb((60.0, -20.0, 0.0))
    steady = video.flicker([a, a, a])
    assert steady.value == 0.0 and steady.pairs == 2 and steady.still == 1.0
    lab_a, lab_b = color.rgb_to_lab(a)[0, 0], color.rgb_to_lab(b)[0, 0]
    expected = float(np.hypot(*(lab_a[1:] - lab_b[1:])))
    assert abs(lab_a[0] - lab_b[0]) < 1.0 and expected > 30
    swinging = video.flicker([a, b, a, b, rgb((5.0, 0.0, 0.0))])  # ... then a cut to black
    assert swinging.value == pytest.approx(expected, rel=1e-4) and (swinging.pairs, swinging.cuts) == (3, 1)
    moving = video.flicker([a, rgb((90.0, -20.0, 0.0))] * 1)  # L moved by 30 everywhere: a cut, nothing still
    assert np.isnan(moving.value) and moving.cuts == 1


# ----------------------------------------------------------------------------- bad inputs


def test_not_a_video(mild: Colorizer, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    picture = fx.write(tmp_path / "still.png", fx.photo(40, 50))
    for path, why in ((text, "not a video labcolor can read"), (picture, "a still picture"),
                      (tmp_path / "missing.mkv", "no such file")):
        with pytest.raises(video.VideoError, match=why) as err:
            video.colorize_video(mild, path, tmp_path / "out.mp4")
        assert str(path) in str(err.value) and "\n" not in str(err.value)
        assert isinstance(err.value, InputError) and isinstance(err.value, LabcolorError)
    assert not (tmp_path / "out.mp4").exists()


def test_frames_too_large_are_refused_from_the_header(mild: Colorizer, clip: Path, tmp_path: Path) -> None:
    with pytest.raises(video.VideoError, match=r"frames of 64x48 .* exceed the limit of 0.003 megapixels"):
        video.colorize_video(mild, clip, tmp_path / "out.mp4", max_pixels=3000)
    assert video.colorize_video(mild, clip, tmp_path / "out.mp4", max_pixels=None).frames == 32


def test_audio_only_file(mild: Colorizer, tmp_path: Path) -> None:
    path = tmp_path / "song.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100)
        stream.layout = "mono"
        for k in range(0, 44100, 1024):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, k
            out.mux(stream.encode(chunk))
        out.mux(stream.encode())
    with pytest.raises(video.VideoError, match=r"no video stream \(audio aac\)") as err:
        video.colorize_video(mild, path, tmp_path / "out.mp4")
    assert str(path) in str(err.value)


def test_truncated_file_gives_what_decodes_with_a_note(mild: Colorizer, mkv_clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mkv"
    data = mkv_clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    readable = len(decoded(cut))
    assert 5 < readable < 40
    result = video.colorize_video(mild, cut, tmp_path / "out.mkv")
    assert not result.complete and result.frames == readable
    assert result.stopped_at == pytest.approx(frame_times(cut)[-1])
    assert "ends early" in result.notes[0] and "truncated" in result.notes[0]
    assert len(decoded(tmp_path / "out.mkv")) == readable  # a complete, playable file of what decoded
    # An MP4 cut short loses its index (at the end by default): not readable at all, and said so.
    mp4 = write_clip(tmp_path / "whole.mp4", scene_frames(24), audio=None)
    (tmp_path / "cut.mp4").write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(video.VideoError, match="cut short"):
        video.colorize_video(mild, tmp_path / "cut.mp4", tmp_path / "o.mp4")


# ----------------------------------------------------------------------------- atomic output, jobs, install


def test_interrupted_run_leaves_no_file(mild: Colorizer, clip: Path, tmp_path: Path) -> None:
    def stop(p: video.VideoProgress) -> None:
        if p.frames == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.colorize_video(mild, clip, tmp_path / "out.mp4", progress=stop)
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file
    video.colorize_video(mild, clip, tmp_path / "out.mp4")
    with pytest.raises(OutputError, match="exists"):
        video.colorize_video(mild, clip, tmp_path / "out.mp4")
    before = (tmp_path / "out.mp4").stat().st_mtime_ns
    video.colorize_video(mild, clip, tmp_path / "out.mp4", overwrite=True, temporal=0.0)
    assert (tmp_path / "out.mp4").stat().st_mtime_ns >= before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_write_error_is_raised_with_no_file_left(mild: Colorizer, clip: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out_dir = tmp_path / "out"
    encode = video._Output._encode
    calls = []

    def full_disk(self, rgb, pts):  # type: ignore[no-untyped-def]
        calls.append(pts)
        if len(calls) == 4:  # in the encoder thread, part-way through
            raise OSError(28, "No space left on device")
        return encode(self, rgb, pts)

    monkeypatch.setattr(video._Output, "_encode", full_disk)
    with pytest.raises(OutputError, match=r"cannot write .*out\.mp4: No space left on device"):
        video.colorize_video(mild, clip, out_dir / "out.mp4")
    assert list(out_dir.iterdir()) == []
    monkeypatch.setattr(video._Output, "_encode", encode)
    same = out_dir / "same.mp4"
    same.write_bytes(clip.read_bytes())
    with pytest.raises(OutputError, match="its own input"):
        video.colorize_video(mild, same, same, overwrite=True)
    assert same.read_bytes() == clip.read_bytes()


def test_folder_job_results(mild: Colorizer, clip: Path, tmp_path: Path) -> None:
    done = video.colorize_video_job(mild, Job(clip, tmp_path / "a.mp4"))
    assert done.status == "done" and done.reason == "" and (tmp_path / "a.mp4").is_file()
    assert video.colorize_video_job(mild, Job(clip, tmp_path / "a.mp4")).status == "skipped"
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 100)
    failed = video.colorize_video_job(mild, Job(bad, tmp_path / "b.mp4"), temporal=0.3)
    assert failed.status == "failed" and str(bad) in failed.reason
    assert video.is_video_path("x/Film.MKV") and not video.is_video_path("x/photo.jpg")


def test_missing_pyav_is_a_config_error(mild: Colorizer, clip: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    assert not video.available()
    with pytest.raises(ConfigError, match=r"pip install 'labcolor\[video\]'"):
        video.colorize_video(mild, clip, tmp_path / "out.mp4")


def test_the_command_colorizes_one_video_and_videos_in_folders(clip: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labcolor import cli
    from tests import runtime_fixtures as fx

    model = fx.make_tiny_model(tmp_path / "m.onnx", gain=0.3)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli.app, cli._route([*args, "-m", str(model)]), prog_name="colorize")

    # One file, -o naming the video to write.
    result = run(str(clip), "-o", str(tmp_path / "one.mp4"))
    assert result.exit_code == 0, result.output
    assert "1 done" in result.output and len(decoded(tmp_path / "one.mp4")) == len(decoded(clip))
    # A folder with a picture and a video (in a sub-folder): both colorized, mirrored, the video's name kept.
    (tmp_path / "in" / "sub").mkdir(parents=True)
    fx.write(tmp_path / "in" / "photo.png", fx.photo(40, 60))
    shutil.copy(clip, tmp_path / "in" / "sub" / "film.mp4")
    result = run(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--temporal", "0.8")
    assert result.exit_code == 0, result.output
    assert "2 done" in result.output
    assert (tmp_path / "out" / "photo.png").is_file() and (tmp_path / "out" / "sub" / "film.mp4").is_file()
    again = run(str(tmp_path / "in"), "-o", str(tmp_path / "out"))  # resumes: both exist
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output

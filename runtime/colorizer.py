"""`Colorizer`: the runtime's public API (onnxruntime + numpy + OpenCV, never torch).

    from labcolor.runtime import Colorizer
    c = Colorizer()                        # the model shipped in the package, CUDA if it really loads
    rgb = c.colorize(gray)                 # (H, W) uint8 -> (H, W, 3) uint8 RGB
    for r in c.colorize_folder("photos"):  # -> photos_colorized/, one FileResult per file
        print(r.status, r.source)

Settings come from the model's labcolor metadata (working size, size multiple, Lab
scaling); constructor arguments override them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from labcolor.core.errors import ConfigError, ModelError, ModelOutputError
from labcolor.core.header import DEFAULT_MAX_PIXELS
from labcolor.core.metadata import MAX_SATURATION, MetadataError, ModelMetadata
from labcolor.runtime import postprocess, preprocess
from labcolor.runtime.batcher import Batcher
from labcolor.runtime.folder import FolderRun, Steps, run_folder
from labcolor.runtime.jobs import Job, iter_jobs
from labcolor.runtime.preprocess import Prepared
from labcolor.runtime.session import create_session, session_device

PathLike = str | os.PathLike

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "default.onnx"
DEFAULT_GPU_BATCH = 8


def default_model_path() -> Path:
    """The model shipped inside the package (runtime/models/default.onnx); ModelError if it is missing."""
    if not DEFAULT_MODEL.is_file():
        raise ModelError(
            f"no default model in this installation (expected {DEFAULT_MODEL}); pass a model file "
            "(--model PATH, or Colorizer(model=PATH)) written by `colorize export`"
        )
    return DEFAULT_MODEL


def cpu_count() -> int:
    """CPUs this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Colorizer:
    """Colorizes pictures with a labcolor ONNX model.

    model: path to a .onnx written by `colorize export`; None loads the packaged default.
    device: "auto" (CUDA when onnxruntime's CUDA provider really loads, else CPU), "cpu", "cuda", "cuda:N".
    size: largest working size (longer side, in px) the network sees; default: the model's inference_size.
        Larger pictures are shrunk to it; smaller ones are used at their own size, or enlarged to the
        model's training crop size (train_size) when below it (preprocess.working_shape says why).
    saturation: colour strength, 0 = gray, 1 = the model's own colours, above 1 stronger (chroma stops
        at the sRGB gamut's edge, hue kept); default: the strength recorded in the model's metadata.
    threads: onnxruntime intra-op threads; default: one per core (folder runs on CPU use one per worker).
    batch_size: pictures per inference in colorize_batch/colorize_folder; default 8 on CUDA, 1 on CPU
        (on CPU, parallel pictures beat batches: the prototype measured 0-7% from batching).
    """

    def __init__(
        self,
        model: PathLike | None = None,
        device: str = "auto",
        *,
        size: int | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        saturation: float | None = None,
    ) -> None:
        self.model_path = Path(model) if model is not None else default_model_path()
        if not self.model_path.is_file():
            raise ModelError(f"model file not found: {self.model_path}")
        if threads is not None and threads < 0:
            raise ConfigError(f"threads must be >= 0, got {threads}")
        self.threads = threads or None
        self.session = create_session(self.model_path, device, self.threads)
        self.device = session_device(self.session)
        self.metadata = ModelMetadata.from_props(
            self.session.get_modelmeta().custom_metadata_map, source=str(self.model_path)
        )
        self._check_io()
        self.size = self.metadata.inference_size if size is None else int(size)
        if self.size <= 0:
            raise ConfigError(f"size must be a positive number of pixels, got {size}")
        self.saturation = self.metadata.saturation if saturation is None else _check_saturation(saturation)
        default_batch = DEFAULT_GPU_BATCH if self.device == "cuda" else 1
        self.batch_size = default_batch if batch_size is None else int(batch_size)
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self._device_request = device
        self._sessions: dict[int | None, ort.InferenceSession] = {self.threads: self.session}
        self._sessions_lock = threading.Lock()

    def _check_io(self) -> None:
        """ModelError unless the graph is what its metadata describes: one float32 input (N, 1, H, W) and a
        float32 output (N, 2, H, W) of the same size, finite on a gray test picture. A broken export is
        refused here, once, instead of failing (or silently ruining) every picture of a run."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        spec_in, spec_out = self.metadata.input, self.metadata.output
        if spec_in.name not in inputs or spec_out.name not in outputs:
            raise MetadataError(
                f"{self.model_path}: metadata names input {spec_in.name!r} and output {spec_out.name!r}, "
                f"but the graph has inputs {list(inputs)} and outputs {list(outputs)}"
            )
        for arg, spec, what in ((inputs[spec_in.name], spec_in, "input"), (outputs[spec_out.name], spec_out, "output")):
            shape = list(arg.shape)
            if arg.type != "tensor(float)" or len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != spec.channels):
                raise ModelError(
                    f"{self.model_path}: the {what} {arg.name!r} is {arg.type} of shape {shape}; labcolor models "
                    f"take and give float32 (N, {spec.channels}, H, W), as their metadata says"
                )
        m = self.metadata.size_multiple
        probe = np.full((1, 1, m, 2 * m), 0.0, np.float32)  # mid-gray; two widths catch a swapped H/W
        try:
            ab = self.predict(probe)
        except ModelOutputError as exc:
            raise ModelError(f"{self.model_path}: refused at load: {exc}") from exc
        except Exception as exc:  # onnxruntime's own errors: the graph cannot run at its own size multiple
            raise ModelError(f"{self.model_path}: cannot run on a {m}x{2 * m} test input (its size multiple): "
                             f"{' '.join(str(exc).split())}") from exc
        if not np.isfinite(ab).all():
            raise ModelError(f"{self.model_path}: refused at load: its output on a gray test picture is not "
                             "finite (NaN or infinity); the model file is broken")

    def __repr__(self) -> str:
        return (f"Colorizer(model={str(self.model_path)!r}, device={self.device!r}, size={self.size}, "
                f"batch_size={self.batch_size}, saturation={self.saturation})")

    # ------------------------------------------------------------------ building blocks

    def session_with_threads(self, threads: int | None) -> ort.InferenceSession:
        """A session on the same device with `threads` intra-op threads (created once, then reused)."""
        with self._sessions_lock:
            if threads not in self._sessions:
                self._sessions[threads] = create_session(self.model_path, self._device_request, threads)
            return self._sessions[threads]

    def prepare(self, image: np.ndarray, *, bgr: bool = True, size: int | None = None) -> Prepared:
        """A picture (gray, gray+alpha, colour, colour+alpha) -> full-res L and the network input at working
        size `size` (default: the colorizer's)."""
        if size is not None and size <= 0:
            raise ConfigError(f"size must be a positive number of pixels, got {size}")
        return preprocess.prepare(
            image, size=size or self.size, multiple=self.metadata.size_multiple, scaling=self.metadata.scaling,
            bgr=bgr, min_size=self.metadata.train_size,
        )

    def predict(self, batch: np.ndarray, session: ort.InferenceSession | None = None) -> np.ndarray:
        """Normalised L (N, 1, ph, pw) float32 -> normalised ab (N, 2, ph, pw) float32."""
        session = session or self.session
        (ab,) = session.run([self.metadata.output.name], {self.metadata.input.name: batch})
        expected = (batch.shape[0], 2, batch.shape[2], batch.shape[3])
        if not isinstance(ab, np.ndarray) or ab.shape != expected or ab.dtype != np.float32:
            got = f"{ab.dtype} {ab.shape}" if isinstance(ab, np.ndarray) else type(ab).__name__
            raise ModelOutputError(f"the model returned {got} for an input of shape {batch.shape}; expected "
                                   f"float32 {expected}")
        return ab

    def finish(self, item: Prepared, ab_n: np.ndarray, *, dtype: np.dtype | None = None,
               bgr: bool = True, saturation: float | None = None) -> np.ndarray:
        """One picture's predicted ab (2, ph, pw) -> the coloured picture at full resolution."""
        if not np.isfinite(ab_n).all():
            raise ModelOutputError("the model's output for this picture has NaN or infinite values")
        return postprocess.colorize_prepared(
            item.l, item.alpha, np.dtype(dtype or item.dtype), ab_n, item.crop, self.metadata.scaling, bgr=bgr,
            saturation=self.saturation if saturation is None else _check_saturation(saturation),
        )

    # ------------------------------------------------------------------ public API

    def colorize(self, image: np.ndarray, *, bgr: bool = False, saturation: float | None = None) -> np.ndarray:
        """Colorize one picture held in memory.

        image: gray (H, W), gray+alpha (H, W, 2), colour (H, W, 3) or colour+alpha (H, W, 4);
            uint8, uint16, or float in [0, 1]. A colour picture counts as its luminance.
        bgr: channel order of colour inputs and of the result (True for OpenCV arrays); default RGB.
        saturation: this call's colour strength; default the colorizer's.
        Returns (H, W, 3), or (H, W, 4) with the alpha kept, in the input's dtype (float -> float32).
        """
        return self.colorize_batch([image], bgr=bgr, saturation=saturation)[0]

    def colorize_batch(self, images: Sequence[np.ndarray], *, bgr: bool = False,
                       saturation: float | None = None) -> list[np.ndarray]:
        """Colorize several pictures; same-shape network inputs share one inference (see colorize)."""
        return self.colorize_prepared([self.prepare(image, bgr=bgr) for image in images], bgr=bgr,
                                      saturations=[saturation])[0]

    def colorize_prepared(self, items: Sequence[Prepared], *, bgr: bool = False,
                          saturations: Sequence[float | None] = (None,)) -> list[list[np.ndarray]]:
        """Prepared pictures -> their colorizations, one list per colour strength in `saturations`.

        Same-shape network inputs share one inference; the network runs once per picture whatever
        the number of strengths (evaluation scores several strengths from one prediction).
        """
        results: list[list[np.ndarray | None]] = [[None] * len(items) for _ in saturations]
        for group in preprocess.group_by_shape(items, self.batch_size):
            ab = self.predict(preprocess.stack([items[i] for i in group]))
            for row, i in enumerate(group):
                for out, s in zip(results, saturations):
                    out[i] = self.finish(items[i], ab[row], bgr=bgr, saturation=s)
        return results  # type: ignore[return-value]  # every slot is filled

    def colorize_folder(
        self,
        inputs: PathLike | Sequence[PathLike],
        output: PathLike | None = None,
        *,
        overwrite: bool = False,
        format: str | None = None,  # mirrors --format
        workers: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> FolderRun:
        """Colorize files and folders (recursive) into `output`; iterate the result for one FileResult per
        picture as it ends (`stop()` on it ends the run gracefully, see folder.FolderRun).

        Default output: `<folder>_colorized` beside each folder argument (see runtime.jobs). Outputs
        are written atomically; existing ones are skipped unless overwrite. Bad files give a "failed"
        result and the run goes on. Raises FileNotFoundError / OutputError before starting when an
        input is missing or the output folder is unsafe. max_pixels: pictures whose header declares
        more are refused before decoding (None: no limit).
        Raises ModelOutputError (while iterating) when the model's output was unusable for every one of
        the first folder.BAD_OUTPUT_STOP pictures.
        """
        paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
        jobs = iter_jobs(paths, Path(output) if output is not None else None, format)
        first = next(jobs, None)  # surfaces input/output errors now, not at the first next() of the caller
        if workers is None:
            # CPU: one picture per core. Batching: enough pictures in flight to fill a batch while others decode.
            workers = max(cpu_count(), self.batch_size) if self.batch_size > 1 else cpu_count()
        if workers <= 0:
            raise ConfigError(f"workers must be positive, got {workers}")
        if max_pixels is not None and max_pixels <= 0:
            raise ConfigError(f"max_pixels must be positive (or None for no limit), got {max_pixels}")
        return self._run_folder(_chain(first, jobs), workers, overwrite, max_pixels)

    def _run_folder(self, jobs: Iterator[Job], workers: int, overwrite: bool, max_pixels: int | None) -> FolderRun:
        # On CPU the cores are shared out between the workers (one each by default) so the pictures in
        # flight never oversubscribe them; an explicit `threads` wins.
        session = self.session
        if self.device == "cpu" and self.threads is None:
            session = self.session_with_threads(max(1, cpu_count() // workers))
        batcher = Batcher(lambda b: self.predict(b, session), self.batch_size, workers) if self.batch_size > 1 else None
        steps = self.file_steps(session, batcher)
        return run_folder(steps, jobs, workers=workers, overwrite=overwrite, max_pixels=max_pixels,
                          on_close=batcher.close if batcher is not None else (lambda: None))

    def file_steps(self, session: ort.InferenceSession | None = None, batcher: Batcher | None = None) -> Steps:
        """What folder.process_job does to each picture with this colorizer: prepare, infer (one picture on
        `session`, or through `batcher`), finish at the colorizer's saturation. Shared by every engine
        that runs the per-file pipeline (the local threads here, a Ray actor), so their outputs are the same."""
        session = session or self.session
        return Steps(
            prepare=lambda image: self.prepare(image, bgr=True),
            infer=batcher.infer if batcher is not None else (lambda net: self.predict(net[None], session)[0]),
            finish=lambda item, ab, dtype: self.finish(item, ab, dtype=dtype, bgr=True),  # at self.saturation
            worker_done=batcher.worker_finished if batcher is not None else (lambda: None),
        )


def _check_saturation(value: float) -> float:
    if not 0 <= value <= MAX_SATURATION:
        raise ConfigError(f"saturation must be between 0 (gray) and {MAX_SATURATION}, got {value}")
    return float(value)


def _chain(first: Job | None, rest: Iterator[Job]) -> Iterator[Job]:
    """Put back the job colorize_folder took early to surface argument errors at call time."""
    if first is not None:
        yield first
        yield from rest

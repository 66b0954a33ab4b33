"""The streaming folder pipeline: read -> decode -> prepare -> infer -> merge -> encode -> atomic write.

Design (measured with scripts/bench_folder.py, see its docstring): on a small CPU the
full-resolution decode, Lab merge and encode cost more than the network, and batching
gains almost nothing, so `workers` threads each carry one picture through every stage,
sharing one onnxruntime session with a single intra-op thread and OpenCV limited to one
thread: the pictures run in parallel, nothing is oversubscribed. With batch_size > 1 (the
default on CUDA) the same workers hand their network inputs to a Batcher that runs
same-shape requests from several workers as one batch, while the other workers decode.

Memory is bounded by the number of workers (each holds one picture); jobs are pulled
lazily from the folder walk, results are small records.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from labcolor.core import imageio
from labcolor.core.errors import ImageError, ModelOutputError, OutputError
from labcolor.core.header import Header
from labcolor.runtime.jobs import Job
from labcolor.runtime.preprocess import Prepared
from labcolor.runtime.results import FileResult

log = logging.getLogger(__name__)

_FINISHED = object()  # a worker's last message on the results queue


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (summaries give one line per file)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def output_dtype(source: np.dtype, suffix: str) -> np.dtype:
    """The result's pixel type: 16-bit stays 16-bit where the format holds it, float goes to 16-bit there."""
    fmt = imageio.OUTPUT_FORMATS[suffix.lower()]
    if source in (np.uint16, np.float32) and fmt.keeps_16bit:
        return np.dtype(np.uint16)
    return np.dtype(np.uint8)


class TempCleaner:
    """Removes temporaries of killed runs from each output folder, once per folder per run."""

    def __init__(self) -> None:
        self._done: set[Path] = set()
        self._lock = threading.Lock()

    def __call__(self, folder: Path) -> None:
        with self._lock:
            if folder in self._done:
                return
            self._done.add(folder)
        removed = imageio.remove_stale_temps(folder)
        if removed:
            log.debug("removed %d stale temporary file(s) in %s", removed, folder)


@dataclass(frozen=True)
class Steps:
    """What happens to one picture between decoding and encoding. The Colorizer provides them, so this
    module knows files, threads and atomic writes but no model, session or device.
    """

    prepare: Callable[[np.ndarray], Prepared]  # decoded picture (OpenCV channel order) -> L + network input
    infer: Callable[[np.ndarray], np.ndarray]  # one network input (1, ph, pw) -> its predicted ab (2, ph, pw)
    finish: Callable[[Prepared, np.ndarray, np.dtype], np.ndarray]  # (item, ab, dtype) -> picture, OpenCV order
    worker_done: Callable[[], None] = lambda: None  # called once by each worker thread as it stops


def process_job(job: Job, steps: Steps, *, overwrite: bool, clean: Callable[[Path], None] | None = None,
                max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS) -> FileResult:
    """Carry one file through the pipeline; every expected problem becomes a "failed" result, not an exception."""
    started = time.perf_counter()

    def failed(reason: str, *, bad_model_output: bool = False) -> FileResult:
        return FileResult(job.source, job.target, "failed", reason, time.perf_counter() - started, bad_model_output)

    if job.problem or job.target is None:
        return failed(job.problem or "no output file")
    if clean is not None:
        clean(job.target.parent)  # every output folder the run touches, whether its pictures exist or not
    if not overwrite and job.target.exists():
        return FileResult(job.source, job.target, "skipped", "output exists")
    try:
        data = np.fromfile(job.source, dtype=np.uint8)
    except OSError as exc:
        return failed(f"cannot read: {exc.strerror or exc}")
    try:
        decoded = imageio.decode_file(data, source="", max_pixels=max_pixels)
        del data
        note = _frames_note(decoded.header)
        item = steps.prepare(decoded.image)
        del decoded  # only L (+ alpha) is needed from here on
    except (ImageError, ValueError, TypeError) as exc:
        return failed(str(exc))
    try:
        ab = steps.infer(item.net)  # (1, ph, pw) -> (2, ph, pw)
    except ModelOutputError as exc:
        return failed(str(exc), bad_model_output=True)
    except Exception as exc:  # an inference failure is this file's failure (e.g. out of GPU memory)
        log.debug("inference failed for %s", job.source, exc_info=True)
        return failed(f"inference failed: {one_line(exc)}")
    suffix = job.target.suffix
    try:
        picture = steps.finish(item, ab, output_dtype(item.dtype, suffix))
        del item
        encoded = imageio.encode(picture, suffix)
        del picture
        imageio.write_atomic(job.target, encoded)
    except ModelOutputError as exc:
        return failed(str(exc), bad_model_output=True)
    except OutputError as exc:
        return failed(str(exc))
    except OSError as exc:
        return failed(f"cannot write {job.target}: {exc.strerror or exc}")
    return FileResult(job.source, job.target, "done", note, time.perf_counter() - started)


def _frames_note(header: Header | None) -> str:
    """What the user should know about a multi-frame file: only its first frame becomes the output."""
    if header is None or header.frames <= 1:
        return ""
    kind = "pages" if header.format == "TIFF" else "frames"
    return f"{header.format} with {header.frames} {kind}: only the first was colorized (still picture written)"


# The run stops when this many pictures reached the network and every one of them got an unusable
# output (NaN/inf): the model file is broken, and going on would only fail the rest of the archive.
BAD_OUTPUT_STOP = 3


class BadOutputWatch:
    """Follows a run's results in order; gives the ModelOutputError that must stop the run once the first
    BAD_OUTPUT_STOP pictures that reached the network all got an unusable output. Shared by every engine."""

    def __init__(self) -> None:
        self.reached_network = 0  # pictures whose network output was checked: fine or not
        self.bad_outputs = 0

    def __call__(self, result: FileResult) -> ModelOutputError | None:
        if result.bad_model_output:
            self.bad_outputs += 1
            self.reached_network += 1
        elif result.status == "done":
            self.reached_network += 1
        if self.bad_outputs >= BAD_OUTPUT_STOP and self.bad_outputs == self.reached_network:
            return ModelOutputError(
                f"the model gave an unusable output (e.g. NaN) for each of the first {self.bad_outputs} "
                f"pictures ({result.reason}); stopped: the model file is probably broken"
            )
        return None


class FolderRun:
    """The results of a folder run, as an iterator (completion order), with a graceful stop.

    `stop()` (e.g. on Ctrl+C) starts no new picture; iterating on then yields the pictures that were
    in flight as they finish their atomic write, so a summary counts every file written. `close()`
    stops, waits for the workers and drops what is left. Not a generator on purpose: a
    KeyboardInterrupt raised while waiting for a result must not end the iteration.
    """

    def __init__(self, steps: Steps, jobs: Iterable[Job], *, workers: int, overwrite: bool,
                 max_pixels: int | None, on_close: Callable[[], None] = lambda: None) -> None:
        if workers <= 0:
            raise ValueError(f"workers must be positive, got {workers}")
        self._source = iter(jobs)
        self._source_lock = threading.Lock()
        self._results: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._steps, self._overwrite, self._max_pixels = steps, overwrite, max_pixels
        self._clean = TempCleaner()
        self._on_close = on_close
        self._live = workers
        self._watch_outputs = BadOutputWatch()
        self._closed = False
        self._cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # parallelism comes from the workers; OpenCV's own pool would oversubscribe
        self._threads = [threading.Thread(target=self._work, name=f"labcolor-worker-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                with self._source_lock:
                    job = next(self._source, None)
                if job is None:
                    break
                try:
                    result = process_job(job, self._steps, overwrite=self._overwrite, clean=self._clean,
                                         max_pixels=self._max_pixels)
                except Exception as exc:  # e.g. MemoryError on a giant picture: that file fails
                    log.debug("unexpected error on %s", job.source, exc_info=True)
                    reason = f"unexpected error: {type(exc).__name__}: {one_line(exc)}"
                    result = FileResult(job.source, job.target, "failed", reason)
                self._results.put(result)
        except BaseException as exc:  # noqa: BLE001 - e.g. an OSError from the job source: re-raised by __next__
            self._results.put(exc)
        finally:
            self._steps.worker_done()
            self._results.put(_FINISHED)

    def __iter__(self) -> FolderRun:
        return self

    def __next__(self) -> FileResult:
        while self._live:
            item = self._results.get()
            if item is _FINISHED:
                self._live -= 1
            elif isinstance(item, BaseException):
                self.close()
                raise item
            else:
                self._watch(item)
                return item
        self.close()
        raise StopIteration

    def _watch(self, result: FileResult) -> None:
        problem = self._watch_outputs(result)
        if problem is not None:
            self.stop()
            raise problem

    def stop(self) -> None:
        """Start no new picture; those in flight still finish and are yielded."""
        self._stop.set()

    def close(self) -> None:
        """Stop, wait for the workers (their pictures in flight finish their write) and release everything."""
        self._stop.set()
        if self._closed:
            return
        self._closed = True
        for t in self._threads:
            t.join()
        cv2.setNumThreads(self._cv_threads)
        self._on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_folder(steps: Steps, jobs: Iterable[Job], *, workers: int, overwrite: bool = False,
               max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS,
               on_close: Callable[[], None] = lambda: None) -> FolderRun:
    """Run `jobs` through `workers` threads; iterate the result for each FileResult as it completes.

    Stopping early (`stop()`, then iterating on; or `close()`) lets the pictures in flight finish
    their atomic write and starts no new one.
    """
    return FolderRun(steps, jobs, workers=workers, overwrite=overwrite, max_pixels=max_pixels, on_close=on_close)

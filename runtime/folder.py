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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from labcolor.core import imageio
from labcolor.core.errors import ImageError, OutputError
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


class _TempCleaner:
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


def process_job(job: Job, steps: Steps, *, overwrite: bool, clean: Callable[[Path], None] | None = None) -> FileResult:
    """Carry one file through the pipeline; every expected problem becomes a "failed" result, not an exception."""
    started = time.perf_counter()

    def failed(reason: str) -> FileResult:
        return FileResult(job.source, job.target, "failed", reason, time.perf_counter() - started)

    if job.problem:
        return failed(job.problem)
    if not overwrite and job.target.exists():
        return FileResult(job.source, job.target, "skipped", "output exists")
    try:
        data = np.fromfile(job.source, dtype=np.uint8)
    except OSError as exc:
        return failed(f"cannot read: {exc.strerror or exc}")
    try:
        image = imageio.decode(data, source="")
        del data
        item = steps.prepare(image)
        del image  # only L (+ alpha) is needed from here on
    except (ImageError, ValueError, TypeError) as exc:
        return failed(str(exc))
    try:
        ab = steps.infer(item.net)  # (1, ph, pw) -> (2, ph, pw)
    except Exception as exc:  # an inference failure is this file's failure (e.g. out of GPU memory)
        log.debug("inference failed for %s", job.source, exc_info=True)
        return failed(f"inference failed: {one_line(exc)}")
    suffix = job.target.suffix
    try:
        picture = steps.finish(item, ab, output_dtype(item.dtype, suffix))
        del item
        encoded = imageio.encode(picture, suffix)
        del picture
        if clean is not None:
            job.target.parent.mkdir(parents=True, exist_ok=True)
            clean(job.target.parent)
        imageio.write_atomic(job.target, encoded)
    except OutputError as exc:
        return failed(str(exc))
    except OSError as exc:
        return failed(f"cannot write {job.target}: {exc.strerror or exc}")
    return FileResult(job.source, job.target, "done", "", time.perf_counter() - started)


def run_folder(steps: Steps, jobs: Iterable[Job], *, workers: int, overwrite: bool = False) -> Iterator[FileResult]:
    """Run `jobs` through `workers` threads; yield each FileResult as it completes (completion order).

    Stopping early (closing the generator, KeyboardInterrupt in the consumer) lets the pictures in
    flight finish their atomic write and starts no new one.
    """
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}")
    source = iter(jobs)
    source_lock = threading.Lock()
    results: queue.Queue = queue.Queue()
    stop = threading.Event()
    clean = _TempCleaner()

    def work() -> None:
        try:
            while not stop.is_set():
                with source_lock:
                    job = next(source, None)
                if job is None:
                    break
                try:
                    result = process_job(job, steps, overwrite=overwrite, clean=clean)
                except Exception as exc:  # noqa: BLE001 - e.g. MemoryError on a giant picture: that file fails
                    log.debug("unexpected error on %s", job.source, exc_info=True)
                    reason = f"unexpected error: {type(exc).__name__}: {one_line(exc)}"
                    result = FileResult(job.source, job.target, "failed", reason)
                results.put(result)
        except BaseException as exc:  # noqa: BLE001 - e.g. an OSError from the folder walk: re-raised below
            results.put(exc)
        finally:
            steps.worker_done()
            results.put(_FINISHED)

    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # parallelism comes from the workers; OpenCV's own pool would oversubscribe
    threads = [threading.Thread(target=work, name=f"labcolor-worker-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        live = workers
        while live:
            item = results.get()
            if item is _FINISHED:
                live -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for t in threads:
            t.join()
        cv2.setNumThreads(cv_threads)

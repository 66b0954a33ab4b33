"""`colorize --engine ray`: the folder pipeline as Ray Data tasks, on one machine or on a cluster.

Why it is built this way:
* The driver lists the jobs with runtime.jobs (same names, same safety checks as the local engine) and
  sends plain strings only. Each actor reads the file's raw bytes itself, so labcolor's own decoder
  (EXIF, 16-bit, alpha, palette) runs there and no pixels travel through the object store.
* Each actor builds one Colorizer (one onnxruntime session) once and runs folder.process_job with
  Colorizer.file_steps() on every row: the local engine's very code, hence byte-identical outputs and the
  same atomic writes, skip/resume and --overwrite.
* Actors send back small records that become FileResults again, so the CLI's loop, its Summary and the
  stop on a broken model's outputs (folder.BadOutputWatch) do not know which engine ran.
Ray is an optional extra (labcolor[ray]): it is only imported inside functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from labcolor.core.errors import ConfigError, DeviceError, LabcolorError
from labcolor.core.header import DEFAULT_MAX_PIXELS
from labcolor.runtime.colorizer import Colorizer, cpu_count
from labcolor.runtime.folder import BadOutputWatch, TempCleaner, one_line, process_job
from labcolor.runtime.jobs import Job, iter_jobs
from labcolor.runtime.results import FileResult

log = logging.getLogger(__name__)

RAY_MISSING = "--engine ray needs Ray: pip install 'labcolor[ray]'"
LOCAL_OBJECT_STORE = 256 * 2**20  # rows and records are a few hundred bytes: Ray's default (30% of RAM) is waste
_STOPPED = "stopped"  # a record of a row skipped after stop(): never shown to the caller
_FINISHED = object()  # the feeder thread's last message


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # the `data` extra (pyarrow and friends), missing from a bare `pip install ray`
    except ImportError as exc:
        raise ConfigError(RAY_MISSING) from exc
    return ray


class _StopFlag:
    """Becomes a tiny Ray actor that every worker asks before each picture (how stop() reaches a cluster)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class _Worker:
    """One Ray Data actor: one Colorizer built once, then process_job on each row it is given."""

    def __init__(self, *, model: str | None, device: str, size: int | None, saturation: float | None,
                 threads: int, overwrite: bool, max_pixels: int | None, stop_flag: Any) -> None:
        import cv2

        cv2.setNumThreads(1)  # one picture at a time per actor: parallelism comes from the actors
        self._colorizer = Colorizer(model, device, size=size, saturation=saturation, threads=threads)
        self._steps = self._colorizer.file_steps()
        self._overwrite, self._max_pixels = overwrite, max_pixels
        self._flag = stop_flag
        self._stopped = False

    def _stop_requested(self) -> bool:
        if not self._stopped:  # once set it stays set: no more round trips while the rest is skipped
            import ray

            self._stopped = bool(ray.get(self._flag.is_set.remote()))
        return self._stopped

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in ("source", "target", "status", "reason", "seconds", "bad_model_output")}
        for source, target, problem in zip(batch["source"], batch["target"], batch["problem"]):
            job = Job(Path(source), Path(target) if target else None, problem or None)
            if self._stop_requested():
                status, reason, seconds, bad = _STOPPED, "", 0.0, False
            else:
                try:
                    # No `clean`: the driver removed stale temporaries while listing (see colorize_folder_ray).
                    r = process_job(job, self._steps, overwrite=self._overwrite, max_pixels=self._max_pixels)
                except Exception as exc:  # e.g. MemoryError on a giant picture: that file fails, as in FolderRun
                    log.debug("unexpected error on %s", job.source, exc_info=True)
                    r = FileResult(job.source, job.target, "failed",
                                   f"unexpected error: {type(exc).__name__}: {one_line(exc)}")
                status, reason, seconds, bad = r.status, r.reason, r.seconds, r.bad_model_output
            for key, value in (("source", source), ("target", target), ("status", status), ("reason", reason),
                               ("seconds", seconds), ("bad_model_output", bad)):
                out[key].append(value)
        return out


class RayRun:
    """folder.FolderRun's interface over a Ray Data run: iterating yields FileResults in completion order;
    `stop()` starts no new picture anywhere in the cluster (those in flight finish and are still yielded);
    `close()` stops, waits for the pictures in flight and releases the actors (and Ray if we started it).

    A thread drains Ray's iterator into a queue: a KeyboardInterrupt in the caller then never lands inside
    Ray's generator (which would end it and lose the pictures still in flight).
    """

    def __init__(self, rows: Iterable[dict[str, Any]], stop_flag: Any = None,
                 on_close: Callable[[], None] = lambda: None) -> None:
        self._flag, self._on_close = stop_flag, on_close
        self._queue: queue.Queue = queue.Queue()
        self._closing = threading.Event()
        self._stop_sent = False
        self._finished = self._closed = False
        self._watch = BadOutputWatch()
        self._thread = threading.Thread(target=self._feed, args=(rows,), name="labcolor-ray-results", daemon=True)
        self._thread.start()

    def _feed(self, rows: Iterable[dict[str, Any]]) -> None:
        it = iter(rows)
        try:
            for row in it:
                if self._closing.is_set():
                    break
                self._queue.put(row)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by __next__
            self._queue.put(_unwrap(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:  # ends Ray Data's execution, and with it the actors
                with contextlib.suppress(Exception):
                    close()
            self._queue.put(_FINISHED)

    def __iter__(self) -> RayRun:
        return self

    def __next__(self) -> FileResult:
        while not self._finished:
            item = self._queue.get()
            if item is _FINISHED:
                self._finished = True
            elif isinstance(item, BaseException):
                self.close()
                raise item
            elif item["status"] != _STOPPED:
                target = item["target"]
                result = FileResult(Path(item["source"]), Path(target) if target else None, item["status"],
                                    item["reason"], float(item["seconds"]), bool(item["bad_model_output"]))
                problem = self._watch(result)
                if problem is not None:
                    self.stop()
                    raise problem
                return result
        self.close()
        raise StopIteration

    def stop(self) -> None:
        """Start no new picture; those in flight still finish and are yielded."""
        if self._flag is None or self._stop_sent:
            return
        self._stop_sent = True
        import ray

        with contextlib.suppress(Exception):  # Ray already gone: nothing left to stop
            ray.get(self._flag.set.remote(), timeout=30)

    def close(self) -> None:
        """Stop, wait for the pictures in flight (their atomic writes end) and release the actors and Ray."""
        self.stop()
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # the feeder leaves at its next record: skipped rows come fast once stopped
        self._thread.join()
        self._on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unwrap(exc: BaseException) -> BaseException:
    """What the user must see of an error raised in an actor, without Ray's wrapping: a model that does not
    load there, a node without labcolor or without a working GPU. One line, so the CLI's edge reports it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, LabcolorError):
        return cause
    if getattr(exc, "actor_init_failed", False):
        # An actor that died in __init__ comes back as a traceback in text; its last line says why.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return LabcolorError(f"a Ray worker could not start: {lines[-1] if lines else type(exc).__name__} "
                             "(on a cluster: is labcolor installed, and --model reachable, on every node?)")
    return exc


def colorize_folder_ray(
    model: str | os.PathLike | None,
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    size: int | None = None,
    saturation: float | None = None,
    threads: int | None = None,
    overwrite: bool = False,
    fmt: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    address: str | None = None,
    num_actors: int | None = None,
    num_cpus: int | None = None,
) -> RayRun:
    """Colorize files and folders like Colorizer.colorize_folder, as Ray Data tasks; iterate the result
    for one FileResult per picture (see RayRun).

    model: None loads the model shipped in each node's labcolor. address: a Ray cluster to join (inputs,
    outputs and `model` must then be at the same paths on every node: shared storage); None starts a
    local Ray instance with `num_cpus` (default: this machine's) and shuts it down at close(). A Ray
    already initialized in this process is used as it is. num_actors: one Colorizer each; default one
    per CPU (`threads` CPUs each), or one per GPU when the device is CUDA. Raises ConfigError when Ray is
    not installed, FileNotFoundError / OutputError (before starting Ray) for bad inputs or outputs.
    """
    ray = _import_ray()
    for name, value in (("max_pixels", max_pixels), ("num_actors", num_actors), ("num_cpus", num_cpus)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if threads is not None and threads < 0:
        raise ConfigError(f"threads must be >= 0, got {threads}")
    rows = _list_jobs(inputs, output, fmt)
    if not rows:
        return RayRun(())

    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"address": address} if address else {
            "num_cpus": num_cpus or cpu_count(), "include_dashboard": False,
            "object_store_memory": LOCAL_OBJECT_STORE}
        # Actors' own output would cut through the progress bar; Ray keeps it in its session's log folder.
        ray.init(**options, log_to_driver=False, logging_level=logging.ERROR)
    elif address:
        log.debug("Ray is already initialized in this process: using it, not %s", address)
    try:
        return _start(ray, rows, str(Path(model).resolve()) if model is not None else None, device, size,
                      saturation, threads, overwrite, max_pixels, num_actors,
                      ray.shutdown if started else (lambda: None))
    except BaseException:
        if started:
            ray.shutdown()
        raise


def _list_jobs(inputs: Sequence[str | os.PathLike], output: str | os.PathLike | None,
               fmt: str | None) -> list[dict[str, str]]:
    """The dataset's rows: plain strings, "" for none. Stale temporaries of killed runs are removed here,
    before any actor writes: a worker on another node could not tell a dead writer from a live one."""
    clean = TempCleaner()
    rows = []
    for job in iter_jobs([Path(p) for p in inputs], Path(output) if output is not None else None, fmt):
        if job.target is not None and not job.problem:
            clean(job.target.parent)
        rows.append({"source": str(job.source), "target": str(job.target or ""), "problem": job.problem or ""})
    return rows


def _start(ray: Any, rows: list[dict[str, str]], model: str | None, device: str, size: int | None,
           saturation: float | None, threads: int | None, overwrite: bool, max_pixels: int | None,
           num_actors: int | None, on_close: Callable[[], None]) -> RayRun:
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    use_gpu = device.startswith("cuda") or (device == "auto" and gpus >= 1)
    if use_gpu and gpus < 1:
        raise DeviceError(f"device {device!r} cannot be used: the Ray cluster has no GPU. Use --device cpu (or auto).")
    want_cpus = 1 if use_gpu else max(1, threads or 1)
    actors = num_actors or (int(gpus) if use_gpu else max(1, int(cpus // want_cpus)))
    # More actors than the cluster holds would wait forever for resources: they share them instead.
    per_actor_cpus = min(want_cpus, cpus / actors) if cpus else want_cpus
    per_actor_gpus = min(1.0, gpus / actors) if use_gpu else 0
    log.info("Ray: %d actor(s), %g CPU%s each, on %g CPUs / %g GPUs", actors, per_actor_cpus,
             f" + {per_actor_gpus:g} GPU" if use_gpu else "", cpus, gpus)

    # At least 16 input blocks per actor keep them evenly busy to the end (the last block is a small share);
    # up to 256 rows per block keep the number of objects the driver creates small for huge archives.
    # Block size does not delay results: each picture's record streams back on its own (see below).
    per_block = max(1, min(256, len(rows) // (actors * 16)))
    data = ray.data
    ds = data.from_items(rows, override_num_blocks=-(-len(rows) // per_block))
    context = ds.context  # this dataset's own copy: the caller's DataContext is left alone
    context.enable_progress_bars = False  # the CLI draws its own
    context.target_max_block_size = 1  # every record its own block: results stream back picture by picture
    flag = ray.remote(num_cpus=0)(_StopFlag).remote()
    ds = ds.map_batches(
        _Worker, batch_size=1, batch_format="numpy", compute=data.ActorPoolStrategy(size=actors),
        num_cpus=per_actor_cpus, num_gpus=per_actor_gpus,
        fn_constructor_kwargs={"model": model, "device": "cuda" if device.startswith("cuda") else device,
                               "size": size, "saturation": saturation, "threads": threads or want_cpus,
                               "overwrite": overwrite, "max_pixels": max_pixels, "stop_flag": flag},
    )

    def release() -> None:
        with contextlib.suppress(Exception):
            ray.kill(flag)
        on_close()

    return RayRun(_rows(ds), flag, release)


def _rows(ds: Any) -> Iterator[dict[str, Any]]:
    yield from ds.iter_rows()

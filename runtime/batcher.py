"""Cross-thread batching of inference requests (used when batch_size > 1, i.e. on GPU by default).

Worker threads call `infer(net)` with one picture's network input (1, ph, pw) and block; a
single inference thread gathers requests of the same shape into batches (N, 1, ph, pw). It
runs a batch as soon as it is full, or when every live worker is waiting (nobody could add
to it), or after `max_wait` seconds. Different shapes never share a batch (see
preprocess.group_by_shape); the oldest request's shape is served first, so none starves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Request:
    net: np.ndarray  # (1, ph, pw)
    arrived: float
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None  # (2, ph, pw)
    error: BaseException | None = None


class Batcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], batch_size: int, workers: int,
                 max_wait: float = 0.05) -> None:
        self._run = run  # (N, 1, ph, pw) -> (N, 2, ph, pw)
        self._batch_size = batch_size
        self._live = workers  # workers that may still send requests
        self._max_wait = max_wait
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="labcolor-infer", daemon=True)
        self._thread.start()

    def infer(self, net: np.ndarray) -> np.ndarray:
        request = _Request(net, time.monotonic())
        with self._cond:
            if self._closed:
                raise RuntimeError("batcher is closed")
            self._pending.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def worker_finished(self) -> None:
        """A worker will send no more requests: waiting for it would only delay the others."""
        with self._cond:
            self._live -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _take(self) -> list[_Request] | None:
        """Block until a batch should run; return it (None once closed and drained)."""
        with self._cond:
            while True:
                if not self._pending:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                shape = self._pending[0].net.shape
                group = [r for r in self._pending if r.net.shape == shape][: self._batch_size]
                waited = time.monotonic() - self._pending[0].arrived
                everyone_waiting = len(self._pending) >= self._live
                if len(group) >= self._batch_size or everyone_waiting or self._closed or waited >= self._max_wait:
                    taken = set(map(id, group))
                    self._pending = [r for r in self._pending if id(r) not in taken]
                    return group
                self._cond.wait(self._max_wait - waited)

    def _loop(self) -> None:
        while (group := self._take()) is not None:
            try:
                out = self._run(np.stack([r.net for r in group]))
                for i, r in enumerate(group):
                    r.result = out[i]
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting worker
                for r in group:
                    r.error = exc
            for r in group:
                r.done.set()

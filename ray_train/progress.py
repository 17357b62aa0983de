"""Training progress from rank 0 to the driver's console, without Ray Train reports.

A Ray Train report costs ~2 s (it syncs every worker), far too much to show every step. Instead rank 0
sends (step, total steps, loss, samples seen) to a small named actor with a fire-and-forget call, and the
driver polls that actor once a second and feeds the CLI's bar. The same path works on a local Ray and on a
cluster (the actor lives wherever Ray puts it; only the driver reads it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ACTOR_PREFIX = "b2ner-train-progress-"


def _actor_class():
    import ray

    @ray.remote(num_cpus=0)
    class ProgressSink:
        def __init__(self) -> None:
            self.state: dict[str, Any] = {}

        def update(self, state: dict[str, Any]) -> None:
            self.state = state

        def get(self) -> dict[str, Any]:
            return self.state

    return ProgressSink


class StepReporter:
    """Used inside the train loop on rank 0: `reporter.step(step, total, loss, samples)`.

    At most one message per `every_s` seconds (and always the last step), so it costs nothing per step.
    A missing sink (no driver listening) makes it a no-op.
    """

    def __init__(self, run_name: str, every_s: float = 1.0) -> None:
        import ray

        self.every_s = every_s
        self._last = 0.0
        self._t0 = time.perf_counter()
        try:
            self._sink = ray.get_actor(ACTOR_PREFIX + run_name)
        except ValueError:
            self._sink = None

    def step(self, step: int, total: int | None, loss: float, samples: int) -> None:
        now = time.perf_counter()
        if self._sink is None or (now - self._last < self.every_s and step != total):
            return
        self._last = now
        elapsed = now - self._t0
        self._sink.update.remote(
            {
                "step": step,
                "total": total,
                "loss": float(loss),
                "samples": samples,
                "samples_per_s": samples / elapsed if elapsed > 0 else 0.0,
            }
        )


@contextmanager
def watch_training(
    run_name: str, on_update: Callable[[dict[str, Any]], None] | None, every_s: float = 1.0
) -> Iterator[None]:
    """Driver side: create the sink for `run_name`, poll it while the block runs, then remove it."""
    if on_update is None:
        yield
        return
    import ray

    sink = _actor_class().options(name=ACTOR_PREFIX + run_name).remote()
    stop = threading.Event()

    def poll() -> None:
        seen: dict[str, Any] = {}
        while not stop.wait(every_s):
            try:
                state = ray.get(sink.get.remote(), timeout=5)
            except Exception:  # noqa: BLE001 - progress is best effort; the fit itself reports errors
                continue
            if state and state != seen:
                seen = state
                on_update(state)

    thread = threading.Thread(target=poll, name=f"train-progress-{run_name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            last = ray.get(sink.get.remote(), timeout=5)
            if last:
                on_update(last)
        except Exception:  # noqa: BLE001
            pass
        ray.kill(sink)

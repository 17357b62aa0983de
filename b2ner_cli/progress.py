"""One progress style for the whole CLI: a rich bar on a terminal, one line per 10% in logs.

`StageProgress` is what every long stage shows (done / total, rate, time left). Engines feed it through
plain callbacks (`update(done, total)`); for Spark jobs, `spark_progress` polls the driver's status tracker
(tasks done / total of the running stages), so the Spark shells stay free of display code and the same
bar works on a local session and a cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StageProgress:
    """Progress of one stage: `update(done, total=None, note="")`; use as a context manager."""

    def __init__(self, console: Console, label: str, unit: str = "", total: int | None = None) -> None:
        self.console, self.label, self.unit, self.total = console, label, unit, total
        self.done = 0
        self.note = ""
        self._t0 = time.perf_counter()
        self._last_step = -1  # last 10% step printed (non-terminal output)
        self._last_line = 0.0
        self._bar: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> StageProgress:
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn(f"[bold]{self.label}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=self.console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, rate="", note="")
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.finish()
        if self._bar is not None:
            self._bar.stop()

    def finish(self) -> None:
        """The stage ended well: show it complete (a log gets its 100% line even for a short stage)."""
        if self.total:
            self.update(max(self.done, self.total), self.total, self.note)
        elif self._bar is None:
            elapsed = time.perf_counter() - self._t0
            self.console.print(f"{self.label}: done in {elapsed:.0f} s", markup=False, highlight=False)

    def rate(self) -> float:
        elapsed = time.perf_counter() - self._t0
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        self.done, self.note = done, note
        if total is not None:
            self.total = total
        rate = f"{self.rate():,.1f} {self.unit}/s" if self.unit else ""
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total, rate=rate, note=note)
            return
        self._log_line(rate)

    def _log_line(self, rate: str) -> None:
        """Without a terminal: one line per 10% (or every 30 s when the total is unknown)."""
        now = time.perf_counter()
        if self.total:
            step = min(10, int(10 * self.done / self.total))
            if step <= self._last_step:
                return
            self._last_step = step
            what = f"{10 * step}% ({self.done:,}/{self.total:,} {self.unit})"
        else:
            if now - self._last_line < 30:
                return
            what = f"{self.done:,} {self.unit}"
        self._last_line = now
        extra = f", {self.note}" if self.note else ""
        self.console.print(
            f"{self.label}: {what}, {rate}, {now - self._t0:.0f} s{extra}", markup=False, highlight=False
        )


def spark_task_counts(spark: Any) -> tuple[int, int]:
    """(tasks completed, tasks in all) over the stages of the jobs running now, from the status tracker."""
    tracker = spark.sparkContext.statusTracker()
    done = total = 0
    for job_id in tracker.getActiveJobsIds():
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else []:
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
    return done, total


@contextmanager
def spark_progress(spark: Any, console: Console, label: str, every_s: float = 0.5) -> Iterator[StageProgress]:
    """Show the Spark tasks of `label` while the block runs (a daemon thread polls the driver)."""
    stop = threading.Event()
    with StageProgress(console, label, unit="tasks") as bar:
        finished = [0, 0]  # tasks of jobs that already ended: the bar only ever grows

        def poll() -> None:
            seen: tuple[int, int] = (0, 0)
            while not stop.wait(every_s):
                try:
                    done, total = spark_task_counts(spark)
                except Exception:  # noqa: BLE001 - the session may be stopping; progress is best effort
                    return
                if total < seen[1]:  # a job ended: bank its tasks
                    finished[0] += seen[0]
                    finished[1] += seen[1]
                seen = (done, total)
                bar.update(finished[0] + done, finished[1] + total or None)
            finished[0] += seen[0]
            finished[1] += seen[1]

        thread = threading.Thread(target=poll, name=f"progress-{label}", daemon=True)
        thread.start()
        try:
            yield bar
        finally:
            stop.set()
            thread.join(timeout=2)
        if finished[1]:  # jobs still running at the last poll ended with the block
            bar.update(finished[1], finished[1])


@contextmanager
def stage_progress(stage: str, engine: str, spark_conf: Any, console: Console) -> Iterator[StageProgress]:
    """The progress display of `stage`: Spark task progress on the Spark engine, else a plain bar."""
    if engine == "spark":
        from spark_jobs.session import get_spark

        with spark_progress(get_spark(spark_conf), console, stage) as bar:
            yield bar
    else:
        with StageProgress(console, stage) as bar:
            yield bar


def train_with_progress(run: Any, cfg: Any, console: Console) -> Any:
    """Run the train stage (`run(stage, cfg, on_progress=...)`) with a bar of steps, loss and samples/s."""
    with StageProgress(console, f"train {cfg.model.family}", unit="steps") as bar:

        def on_progress(state: dict[str, Any]) -> None:
            note = (
                f"loss {state.get('loss', float('nan')):.3f}, {state.get('samples_per_s', 0):.0f} samples/s"
            )
            bar.update(int(state.get("step", 0)), state.get("total"), note=note)

        return run("train", cfg, on_progress=on_progress)

"""Benchmark: ingest all shared corpora at 1x, 4x, 10x replicated input, Spark vs plain Python.

    .venv/bin/python bench/ingest.py                    # replicates 1 4 10, both engines
    .venv/bin/python bench/ingest.py --replicates 1 4   # a shorter run
    .venv/bin/python bench/ingest.py --engines spark spark-collect --datasets conll2003   # issue 18's check

Each measurement runs in a fresh subprocess (so peak memory is its own): `spark` = the Spark job
(local[2] by default) timed after the JVM has started, end to end: planning, reading in mapInArrow,
delta-spark writes from the executors (bronze samples/rejects/reconciliation) into a fresh warehouse.
`spark-collect` = the path before issue 18, kept here as the baseline: the same mapInArrow output collected
on the driver as Arrow IPC blobs and committed with delta-rs. `python` = the single-process plain-Python
baseline over the same files (same readers, same Delta output). Peak memory = the largest summed RSS of
the process tree (driver + JVM + Python workers), and of the Python driver process alone, sampled every
0.2 s. Prints a table and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ingest.json"


class PeakRSS:
    """Sample the RSS of this process and its children in a thread; `.peak` in bytes.

    Also tracks the CPU seconds of the process tree (`.cpu`): on a machine shared with other jobs the
    wall time depends on the load, the CPU time much less.
    """

    def __init__(self, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.peak_self = 0  # this (the driver's Python) process alone
        self.cpu_by_pid: dict[int, float] = {}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak_self = max(self.peak_self, self.proc.memory_info().rss)
                for p in procs:
                    try:
                        total += p.memory_info().rss
                        c = p.cpu_times()
                        self.cpu_by_pid[p.pid] = c.user + c.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    @property
    def cpu(self) -> float:
        return sum(self.cpu_by_pid.values())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_collect(cfg, spark):
    """The Spark ingest before issue 18 (driver-collect + delta-rs commits): the benchmark's baseline only."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from b2ner_common import tables
    from b2ner_common.ingest.job import RECON, commit_metadata, plan, reconciliation, report, write_bronze
    from b2ner_common.ingest.units import (
        PAYLOAD_SCHEMA,
        dataset_predicate,
        payloads_output,
        split_output,
        unit_payloads,
        units_table,
    )

    tasks, units = plan(cfg)
    t0 = time.perf_counter()
    units.sort(key=lambda u: u.end - u.start, reverse=True)
    n_parts = min(len(units), 2 * spark.sparkContext.defaultParallelism)
    unit_df = spark.createDataFrame(units_table(units)).repartition(n_parts)
    blobs = unit_df.mapInArrow(unit_payloads, schema=from_arrow_schema(PAYLOAD_SCHEMA))
    samples, rejects, stats = split_output(payloads_output(blobs.toArrow()))
    write_bronze(cfg, tasks, samples, rejects)
    recon = reconciliation(cfg, tasks, stats)
    tables.write_table(
        tables.table_path(cfg.warehouse, RECON),
        recon,
        mode="overwrite",
        predicate=dataset_predicate({t.dataset for t in tasks}),
        metadata=commit_metadata(cfg),
    )
    return report(cfg, recon, stats, "spark-collect", time.perf_counter() - t0, len(units))


def measure_one(
    engine: str, replicate: int, corpora: str, master: str, datasets: list[str], spark_conf: list[str] = ()
) -> dict:
    """One measurement in this process (called in a subprocess by main)."""
    from b2ner_common.config import load_config
    from b2ner_common.ingest.job import run_local

    wh = tempfile.mkdtemp(prefix="bench_ingest_")
    cfg = load_config(
        None,
        [
            f"warehouse={wh}",
            f"ingest.corpora={corpora}",
            f"ingest.replicate={replicate}",
            f"spark.master={master}",
            f"ingest.datasets=[{', '.join(datasets)}]",
            *(
                [
                    "spark.conf={"
                    + ", ".join(f"{k}: '{v}'" for k, v in (x.split("=", 1) for x in spark_conf))
                    + "}"
                ]
                if spark_conf
                else []
            ),
        ],
    )
    mem = PeakRSS()
    with mem:
        startup = 0.0
        if engine in ("spark", "spark-collect"):
            from spark_jobs.ingest import run_ingest
            from spark_jobs.session import get_spark

            t0 = time.perf_counter()
            spark = get_spark(cfg.spark)
            spark.range(1).count()
            startup = time.perf_counter() - t0
            time.sleep(2 * mem.interval)
            cpu0 = mem.cpu
            t0 = time.perf_counter()
            report = (run_ingest if engine == "spark" else run_collect)(cfg, spark)
            seconds = time.perf_counter() - t0
            time.sleep(2 * mem.interval)
            cpu = mem.cpu - cpu0
            spark.stop()
        else:
            time.sleep(2 * mem.interval)
            cpu0 = mem.cpu
            t0 = time.perf_counter()
            report = run_local(cfg)
            seconds = time.perf_counter() - t0
            time.sleep(2 * mem.interval)
            cpu = mem.cpu - cpu0
    subprocess.run(["rm", "-rf", wh], check=False)
    sentences = report.records
    return {
        "engine": engine,
        "replicate": replicate,
        "sentences": sentences,
        "accepted": sum(report.reconciliation["accepted"].to_pylist()),
        "seconds": round(seconds, 2),
        "sentences_per_s": round(sentences / seconds),
        "cpu_s": round(cpu, 1),
        "sentences_per_cpu_s": round(sentences / cpu) if cpu else None,
        "engine_startup_s": round(startup, 2),
        "peak_rss_mib": round(mem.peak / 2**20),
        "driver_rss_mib": round(mem.peak_self / 2**20),
        "units": report.units,
        "problems": report.problems,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, nargs="+", default=[1, 4, 10])
    ap.add_argument(
        "--engines", nargs="+", default=["spark", "python"], choices=["spark", "spark-collect", "python"]
    )
    ap.add_argument("--out", default=str(RESULTS), help="results JSON (default bench/results/ingest.json)")
    ap.add_argument("--datasets", nargs="*", default=[], help="restrict to these datasets (default: all)")
    ap.add_argument("--corpora", default=str(ROOT.parent / "shared" / "corpora"))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument(
        "--spark-conf", nargs="*", default=[], metavar="KEY=VALUE", help="extra spark.* settings (spark.conf)"
    )
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "REPLICATE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one = measure_one(
            args.one[0], int(args.one[1]), args.corpora, args.master, args.datasets, args.spark_conf
        )
        print("RESULT " + json.dumps(one))
        return
    if not Path(args.corpora).is_dir():
        sys.exit(f"corpora folder {args.corpora} not found: this benchmark needs ../shared/corpora")
    rows = []
    for r in args.replicates:
        for engine in args.engines:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                engine,
                str(r),
                "--corpora",
                args.corpora,
                "--master",
                args.master,
                "--datasets",
                *args.datasets,
                "--spark-conf",
                *args.spark_conf,
            ]
            out = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
            )
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{engine} x{r} failed:\n{out.stderr[-3000:]}")
            rows.append(json.loads(line[len("RESULT ") :]))
            print(
                f"{engine:>13} x{r:<3} {rows[-1]['sentences']:>9,} sentences {rows[-1]['seconds']:>8.1f} s",
                flush=True,
            )
    load = os.getloadavg()
    result = {
        "benchmark": "ingest",
        "machine": f"{os.cpu_count()} cores; load average at end {load[0]:.1f} (shared with other jobs)",
        "master": args.master,
        "datasets": args.datasets or "all",
        "spark_conf": args.spark_conf,
        "command": " ".join(["bench/ingest.py", *sys.argv[1:]]),
        "rows": rows,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"ingest of all shared corpora ({result['machine']})")
    for c in (
        "engine",
        "replicate",
        "sentences",
        "seconds",
        "sentences/s",
        "CPU s",
        "sent/CPU-s",
        "startup s",
        "peak RSS MiB",
        "driver RSS MiB",
    ):
        t.add_column(c, justify="right")
    for x in rows:
        t.add_row(
            x["engine"],
            f"{x['replicate']}x",
            f"{x['sentences']:,}",
            f"{x['seconds']:.1f}",
            f"{x['sentences_per_s']:,}",
            f"{x['cpu_s']:.1f}",
            f"{x['sentences_per_cpu_s']:,}",
            f"{x['engine_startup_s']:.1f}",
            f"{x['peak_rss_mib']:,}",
            f"{x['driver_rss_mib']:,}",
        )
    Console(width=140).print(t)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

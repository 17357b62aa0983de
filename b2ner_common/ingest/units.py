"""Ingest core: catalog files -> work units -> samples, rejects and per (dataset, split) reconciliation.

Plain functions, no engine: `spark_jobs/ingest.py` runs `unit_batches` inside mapInArrow, and
`ingest_local` runs the same functions in one process (tests, the plain-Python baseline).

A work unit is a byte range of one file that starts and ends on record boundaries (a blank line for
token-per-line corpora, any newline for JSON lines, the whole file for JSON arrays), with the line
number it starts at, so every row keeps an exact `source = file:line`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from b2ner_common.ingest.catalog import FileTask
from b2ner_common.ingest.readers import FORMATS, ReadSpec, make_options, read_records
from b2ner_common.schema import (
    BRONZE_REJECTS,
    BRONZE_SAMPLES,
    ENTITY_TYPE,
    RECONCILIATION,
    ReadStats,
    Reject,
    Sample,
    rejects_to_arrow,
)

DEFAULT_CHUNK_BYTES = 2 << 20


@dataclass(frozen=True)
class WorkUnit:
    """A record-aligned byte range [start, end) of one file; serializable as one Spark row."""

    dataset: str
    split: str
    lang: str
    format: str
    options: str  # JSON of the format options
    encoding: str
    path: str  # absolute
    source: str  # relative path (+ "#rN" for replica N > 0) written into `source`
    start: int = 0
    end: int = 0
    first_line: int = 1
    problem: str = ""  # "file not found", "empty file": the unit yields one reject


UNIT_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("lang", pa.string()),
        ("format", pa.string()),
        ("options", pa.string()),
        ("encoding", pa.string()),
        ("path", pa.string()),
        ("source", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("first_line", pa.int64()),
        ("problem", pa.string()),
    ]
)

# What one mapInArrow task emits: samples, rejects and one stats row per unit, told apart by `kind`.
OUT_SCHEMA = pa.schema(
    [("kind", pa.string())]
    + [f for f in BRONZE_SAMPLES]
    + [("reason", pa.string()), ("raw", pa.string()), ("stats", pa.string())]
)


@dataclass
class IngestResult:
    samples: list[Sample] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    stats: dict[tuple[str, str], ReadStats] = field(default_factory=dict)


def _boundary(data: bytes, p: int, unit: str) -> int:
    """First record boundary at or after byte p (the start of the next record)."""
    if p >= len(data) or unit == "file":
        return len(data)
    if unit == "line":
        i = data.find(b"\n", p)
        return len(data) if i < 0 else i + 1
    cands = [i + k for i, k in ((data.find(b"\n\n", p), 2), (data.find(b"\n\r\n", p), 3)) if i >= 0]
    return min(cands) if cands else len(data)


def plan_units(
    tasks: Iterable[FileTask], chunk_bytes: int = DEFAULT_CHUNK_BYTES, replicate: int = 1
) -> list[WorkUnit]:
    """Cut every file into record-aligned chunks of about `chunk_bytes`; `replicate` repeats each file
    as distinct sources (benchmarks). Missing or empty files become units that yield one reject."""
    if replicate < 1:
        raise ValueError(f"replicate must be >= 1, got {replicate}")
    units: list[WorkUnit] = []
    for t in tasks:
        base = dict(
            dataset=t.dataset,
            split=t.split,
            lang=t.lang,
            format=t.format,
            options=t.options.model_dump_json(),
            encoding=t.encoding,
            path=str(t.path),
        )
        ranges: list[tuple[int, int, int]] = []
        problem = ""
        if not t.path.is_file():
            problem = f"file not found: {t.path}"
        else:
            data = t.path.read_bytes()
            if not data.strip():
                problem = "empty file"
            unit = FORMATS[t.format].unit
            start, line = 0, 1
            while start < len(data) and not problem:
                end = _boundary(data, start + max(chunk_bytes, 1), unit)
                ranges.append((start, end, line))
                line += data.count(b"\n", start, end)
                start = end
        for r in range(replicate):
            source = t.source if r == 0 else f"{t.source}#r{r}"
            if problem:
                units.append(WorkUnit(**base, source=source, problem=problem))
            for s, e, ln in ranges:
                units.append(WorkUnit(**base, source=source, start=s, end=e, first_line=ln))
    return units


def read_unit(unit: WorkUnit, data: bytes | None = None) -> tuple[list[Sample], list[Reject], ReadStats]:
    """Read one work unit (its bytes are read from `unit.path` unless given)."""
    stats = ReadStats()
    spec = ReadSpec(
        dataset=unit.dataset,
        split=unit.split,
        lang=unit.lang,
        source=unit.source,
        options=make_options(unit.format, json.loads(unit.options)),
        first_line=unit.first_line,
        encoding=unit.encoding,
    )
    if unit.problem:
        rej = Reject(unit.dataset, unit.split, f"{unit.source}:0", unit.problem, "")
        stats.records_read, stats.rejected = 1, 1
        return [], [rej], stats
    if data is None:
        with open(unit.path, "rb") as f:
            f.seek(unit.start)
            data = f.read(unit.end - unit.start)
    try:
        text = data.decode(unit.encoding)
        # The CoNLL reader takes the whole text (its fast path); the others read lines.
        lines: str | list[str] | list[bytes] = text if unit.format == "conll" else text.split("\n")
    except UnicodeDecodeError:
        lines = data.split(b"\n")  # per-line decoding: bad lines become rejects naming their line
    samples: list[Sample] = []
    rejects: list[Reject] = []
    for rec in read_records(unit.format, lines, spec, stats):
        (samples if isinstance(rec, Sample) else rejects).append(rec)
    return samples, rejects, stats


def merge_stats(into: dict[tuple[str, str], ReadStats], key: tuple[str, str], st: ReadStats) -> None:
    acc = into.setdefault(key, ReadStats())
    acc.records_read += st.records_read
    acc.accepted += st.accepted
    acc.rejected += st.rejected
    acc.entities += st.entities
    acc.repairs += st.repairs
    for k, v in st.extra.items():
        acc.extra[k] = acc.extra.get(k, 0) + v


def ingest_units(units: Iterable[WorkUnit]) -> IngestResult:
    """Read work units in this process."""
    res = IngestResult()
    for u in units:
        s, r, st = read_unit(u)
        res.samples.extend(s)
        res.rejects.extend(r)
        merge_stats(res.stats, (u.dataset, u.split), st)
    return res


def ingest_tasks(
    tasks: list[FileTask], chunk_bytes: int = DEFAULT_CHUNK_BYTES, replicate: int = 1
) -> IngestResult:
    """Read catalog files in this process: the fast path for tests and the plain-Python baseline."""
    return ingest_units(plan_units(tasks, chunk_bytes, replicate))


def ingest_entry(catalog, name: str, corpora: str | Path) -> IngestResult:
    """Read every file of catalog dataset `name` (any role) under `corpora`."""
    return ingest_tasks(catalog.tasks(corpora, [name]))


# ---------------------------------------------------------------- Arrow


def samples_table(samples: list[Sample]) -> pa.Table:
    """bronze/samples rows, built column-wise (much faster than from_pylist for nested entities)."""
    offsets = [0]
    es: list[int] = []
    ee: list[int] = []
    el: list[str] = []
    et: list[str] = []
    ety: list[str] = []
    for s in samples:
        for e in s.entities:
            es.append(e.start)
            ee.append(e.end)
            el.append(e.label)
            et.append(e.text)
            ety.append(e.type)
        offsets.append(len(es))
    values = pa.StructArray.from_arrays(
        [
            pa.array(es, pa.int32()),
            pa.array(ee, pa.int32()),
            pa.array(el, pa.string()),
            pa.array(et, pa.string()),
            pa.array(ety, pa.string()),
        ],
        fields=list(ENTITY_TYPE),
    )
    ents = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    cols = {
        "sample_id": pa.array([s.sample_id for s in samples], pa.string()),
        "dataset": pa.array([s.dataset for s in samples], pa.string()),
        "split": pa.array([s.split for s in samples], pa.string()),
        "lang": pa.array([s.lang for s in samples], pa.string()),
        "text": pa.array([s.text for s in samples], pa.string()),
        "entities": ents,
        "source": pa.array([s.source for s in samples], pa.string()),
        "repairs": pa.array([s.repairs for s in samples], pa.int32()),
    }
    return pa.Table.from_arrays(list(cols.values()), schema=BRONZE_SAMPLES)


def rejects_table(rejects: list[Reject]) -> pa.Table:
    return rejects_to_arrow(rejects)


def stats_json(key: tuple[str, str], st: ReadStats) -> str:
    return json.dumps({"dataset": key[0], "split": key[1], **asdict(st)}, sort_keys=True)


def stats_from_json(rows: Iterable[str]) -> dict[tuple[str, str], ReadStats]:
    out: dict[tuple[str, str], ReadStats] = {}
    for r in rows:
        d = json.loads(r)
        key = (d.pop("dataset"), d.pop("split"))
        merge_stats(out, key, ReadStats(**d))
    return out


def reconciliation_table(
    stats: dict[tuple[str, str], ReadStats], expected: dict[tuple[str, str], int | None] | None = None
) -> pa.Table:
    """One row per (dataset, split): records_read = accepted + rejected, entities, repairs (+ per kind)."""
    expected = expected or {}
    rows = [
        {
            "dataset": ds,
            "split": sp,
            "records_read": st.records_read,
            "accepted": st.accepted,
            "rejected": st.rejected,
            "entities": st.entities,
            "repairs": st.repairs,
            "repair_detail": json.dumps(dict(sorted(st.extra.items()))),
            "expected": expected.get((ds, sp)),
        }
        for (ds, sp), st in sorted(stats.items())
    ]
    return pa.Table.from_pylist(rows, schema=RECONCILIATION)


def expected_counts(tasks: Iterable[FileTask], replicate: int = 1) -> dict[tuple[str, str], int | None]:
    """Published sentence counts per (dataset, split), times the replication; None if any file lacks one."""
    out: dict[tuple[str, str], int | None] = {}
    for t in tasks:
        key = (t.dataset, t.split)
        prev = out.get(key, 0)
        out[key] = None if (prev is None or t.expected is None) else prev + t.expected * replicate
    return out


def _pad(table: pa.Table, kind: str) -> pa.Table:
    n = table.num_rows
    cols = []
    for f in OUT_SCHEMA:
        if f.name == "kind":
            cols.append(pa.array([kind] * n, pa.string()))
        elif f.name in table.column_names:
            cols.append(table[f.name])
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(cols, schema=OUT_SCHEMA)


def unit_output(unit: WorkUnit) -> pa.Table:
    """Everything one unit produces, as OUT_SCHEMA rows (the mapInArrow payload)."""
    samples, rejects, st = read_unit(unit)
    stats = pa.table(
        {
            "dataset": [unit.dataset],
            "split": [unit.split],
            "stats": [stats_json((unit.dataset, unit.split), st)],
        }
    )
    return pa.concat_tables(
        [_pad(samples_table(samples), "sample"), _pad(rejects_table(rejects), "reject"), _pad(stats, "stats")]
    )


def unit_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: UNIT_SCHEMA batches in, OUT_SCHEMA batches out (one or more per unit)."""
    for batch in batches:
        for row in batch.to_pylist():
            yield from unit_output(WorkUnit(**row)).to_batches()


# The delta-rs path ships each unit's output to the driver as ONE Arrow IPC blob: Spark moves opaque
# bytes instead of converting every nested row to JVM rows and back (a third of the job's CPU).
PAYLOAD_SCHEMA = pa.schema([("payload", pa.binary())])


def unit_payloads(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: UNIT_SCHEMA batches in, one PAYLOAD_SCHEMA row (IPC stream of OUT_SCHEMA) per unit."""
    for batch in batches:
        for row in batch.to_pylist():
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, OUT_SCHEMA) as writer:
                writer.write_table(unit_output(WorkUnit(**row)))
            yield pa.RecordBatch.from_arrays(
                [pa.array([sink.getvalue().to_pybytes()], pa.binary())], schema=PAYLOAD_SCHEMA
            )


def payloads_output(payloads: pa.Table) -> pa.Table:
    """PAYLOAD_SCHEMA rows -> the OUT_SCHEMA table they carry."""
    parts = [pa.ipc.open_stream(v.as_buffer()).read_all() for c in payloads["payload"].chunks for v in c]
    return pa.concat_tables(parts) if parts else OUT_SCHEMA.empty_table()


def units_table(units: list[WorkUnit]) -> pa.Table:
    return pa.Table.from_pylist([asdict(u) for u in units], schema=UNIT_SCHEMA)


def split_output(out: pa.Table) -> tuple[pa.Table, pa.Table, dict[tuple[str, str], ReadStats]]:
    """OUT_SCHEMA rows -> (samples, rejects, stats)."""
    import pyarrow.compute as pc

    kind = out["kind"]
    samples = out.filter(pc.equal(kind, "sample")).select(BRONZE_SAMPLES.names).cast(BRONZE_SAMPLES)
    rejects = out.filter(pc.equal(kind, "reject")).select(BRONZE_REJECTS.names).cast(BRONZE_REJECTS)
    stats = stats_from_json(out.filter(pc.equal(kind, "stats"))["stats"].to_pylist())
    return samples, rejects, stats


def dataset_predicate(datasets: Iterable[str]) -> str:
    """SQL predicate selecting the rows of these datasets (predicate overwrite of rejects/reconciliation)."""
    names = sorted(set(datasets))
    quoted = ", ".join("'" + d.replace("'", "''") + "'" for d in names)
    return f"dataset IN ({quoted})"


def table_counts(samples: pa.Table) -> dict[tuple[str, str], int]:
    g = samples.select(["dataset", "split"]).group_by(["dataset", "split"]).aggregate([([], "count_all")])
    return {
        (d, s): c
        for d, s, c in zip(
            g["dataset"].to_pylist(), g["split"].to_pylist(), g["count_all"].to_pylist(), strict=True
        )
    }


def check_reconciliation(
    stats: dict[tuple[str, str], ReadStats], in_table: dict[tuple[str, str], int]
) -> list[str]:
    """Problems found: reader accounting (read != accepted + rejected) or samples missing from the table."""
    problems = []
    for (ds, sp), st in sorted(stats.items()):
        if st.records_read != st.accepted + st.rejected:
            problems.append(
                f"{ds}/{sp}: read {st.records_read} != accepted {st.accepted} + rejected {st.rejected}"
            )
        have = in_table.get((ds, sp), 0)
        if have < st.accepted:
            problems.append(f"{ds}/{sp}: bronze/samples holds {have} rows, the run accepted {st.accepted}")
    return problems

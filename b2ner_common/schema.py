"""Records (Sample, Entity, Reject) and the Arrow schema of every warehouse table.

Offsets are character offsets into ``Sample.text``, end exclusive: ``text[start:end] == entity.text``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Entity:
    start: int
    end: int
    label: str
    text: str
    # Universal taxonomy type name; empty until the taxonomy stage maps it.
    type: str = ""


@dataclass(slots=True)
class Sample:
    sample_id: str
    dataset: str
    split: str
    lang: str
    text: str
    entities: list[Entity]
    source: str  # "relative/file:line" of the record's first line
    # Tag-scheme repairs applied while reading (IOB1 -> BIO, I- after O, ...): counted, never silent.
    repairs: int = 0


@dataclass(slots=True)
class Reject:
    dataset: str
    split: str
    source: str  # "relative/file:line"
    reason: str
    raw: str


@dataclass(slots=True)
class ReadStats:
    """Per (dataset, split) reconciliation: records_read == accepted + rejected."""

    records_read: int = 0
    accepted: int = 0
    rejected: int = 0
    entities: int = 0
    repairs: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def make_sample_id(dataset: str, split: str, source: str, text: str) -> str:
    """Stable id of a sample: the same input always gets the same id, so re-runs never duplicate rows."""
    h = hashlib.blake2b(digest_size=12)
    for part in (dataset, split, source, text):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def check_offsets(text: str, entities: Iterable[Entity]) -> str | None:
    """Return a reason string when an entity's offsets do not match the text, else None."""
    for e in entities:
        if not (0 <= e.start < e.end <= len(text)):
            return f"span out of range [{e.start},{e.end}) for text of length {len(text)}"
        if text[e.start : e.end] != e.text:
            return f"span [{e.start},{e.end}) is {text[e.start : e.end]!r}, entity text is {e.text!r}"
    return None


ENTITY_TYPE = pa.struct(
    [
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("label", pa.string()),
        ("text", pa.string()),
        ("type", pa.string()),
    ]
)

BRONZE_SAMPLES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("lang", pa.string()),
        ("text", pa.string()),
        ("entities", pa.list_(ENTITY_TYPE)),
        ("source", pa.string()),
        ("repairs", pa.int32()),
    ]
)

BRONZE_REJECTS = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)

# silver/samples = bronze columns (entities carry the universal `type`) + the dataset's universal label set.
SILVER_SAMPLES = pa.schema(list(BRONZE_SAMPLES) + [("label_set", pa.list_(pa.string()))])

RECONCILIATION = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("records_read", pa.int64()),
        ("accepted", pa.int64()),
        ("rejected", pa.int64()),
        ("entities", pa.int64()),
        ("repairs", pa.int64()),
        ("repair_detail", pa.string()),  # JSON {kind: count}: iob1_to_bio, i_after_o, span_trimmed, ...
        ("expected", pa.int64()),  # published sentence count (catalog), null when unknown
    ]
)

LABEL_CONFLICTS = pa.schema(
    [
        ("mode", pa.string()),  # "raw" or "mapped"
        ("dataset_a", pa.string()),
        ("label_a", pa.string()),
        ("dataset_b", pa.string()),
        ("label_b", pa.string()),  # label in B for type/boundary conflicts and agreement; "" when missing
        ("mentions", pa.int64()),
        ("agree", pa.int64()),
        ("type_conflict", pa.int64()),
        ("boundary_conflict", pa.int64()),
        ("missing", pa.int64()),
        ("conflict_ratio", pa.float64()),
        ("examples", pa.list_(pa.string())),
    ]
)

EMBEDDINGS = pa.schema(
    [("sample_id", pa.string()), ("model", pa.string()), ("vector", pa.list_(pa.float32()))]
)

SELECTION = pa.schema(
    [
        ("sample_id", pa.string()),
        ("dataset", pa.string()),
        ("stage", pa.string()),  # "category" (stage 1) or "semantic" (stage 2)
        ("category", pa.string()),  # universal type the sample was picked for
        ("cluster", pa.int32()),
        ("selection_run", pa.string()),
    ]
)

PREDICTED_ENTITY = pa.struct(
    [
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("label", pa.string()),
        ("text", pa.string()),
        ("score", pa.float32()),
    ]
)

PREDICTIONS = pa.schema(
    [
        ("run_id", pa.string()),
        ("doc_id", pa.string()),
        ("entities", pa.list_(PREDICTED_ENTITY)),
        ("raw_output", pa.string()),
        ("model", pa.string()),
        ("status", pa.string()),  # "ok", "truncated", "parse_error", "error: ..."
        ("error", pa.string()),
    ]
)


def entity_to_row(e: Entity) -> dict:
    return asdict(e)


def sample_to_row(s: Sample) -> dict:
    row = asdict(s)
    return row


def samples_to_arrow(samples: Iterable[Sample], schema: pa.Schema = BRONZE_SAMPLES) -> pa.Table:
    rows = [sample_to_row(s) for s in samples]
    return pa.Table.from_pylist(rows, schema=schema)


def rejects_to_arrow(rejects: Iterable[Reject]) -> pa.Table:
    return pa.Table.from_pylist([asdict(r) for r in rejects], schema=BRONZE_REJECTS)


def row_to_sample(row: dict) -> Sample:
    ents = [Entity(**e) for e in (row.get("entities") or [])]
    return Sample(
        sample_id=row["sample_id"],
        dataset=row["dataset"],
        split=row["split"],
        lang=row["lang"],
        text=row["text"],
        entities=ents,
        source=row["source"],
        repairs=int(row.get("repairs") or 0),
    )


# --- predictions (every model family returns these) ---


@dataclass(frozen=True, slots=True)
class PredictedEntity:
    start: int
    end: int
    label: str
    text: str
    score: float | None = None


@dataclass(slots=True)
class Prediction:
    """A predictor's detailed answer for one text: entities plus what it saw on the way.

    raw_output: the model's text (LLMs) or "" ; truncated: something was cut (input tokens, answer tokens);
    problems: parse problems (b2ner_common.parsing.ParseProblem) for generative models.
    """

    entities: list[PredictedEntity]
    raw_output: str = ""
    truncated: bool = False
    problems: list = field(default_factory=list)

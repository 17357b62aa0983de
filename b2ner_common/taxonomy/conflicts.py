"""Cross-dataset label conflict screening: how does dataset B annotate the mentions that dataset A annotates?

For every annotated mention string of dataset A, every occurrence of that string in a text of dataset
B (B != A) is classified against B's own annotation at that place:

- agree: B annotates exactly that span with the same label (mapped mode: the same or a hierarchically
  compatible universal type, see `Taxonomy.compatible`);
- type_conflict: B annotates exactly that span with another label;
- boundary_conflict: B annotates a span that overlaps it but is not identical;
- missing: B leaves it unannotated although B's label set covers A's label (raw mode: B uses the same
  raw label string; mapped mode: B's label set has a compatible type). Occurrences in datasets that do
  not annotate that kind of entity at all are not counted.

Both modes are screened in one pass: `raw` compares raw label strings (case-insensitive), `mapped`
compares universal types. Nothing compares sentence pairs: A's mentions go into a hash index keyed by
their first token (English and other space-separated languages, word-boundary aware) or first two
characters (Chinese, character level). The index is prefix-closed (every proper prefix of a mention is
a key too), so a scan walks from each position only while some mention continues: about one hash
lookup per position, linear in the input size.

Each string of A counts with its majority label in A (ties: alphabetical); A's mentions are matched
leftmost-longest, so a shorter mention of A inside a longer one of A is not counted twice; only texts
of the same language are searched; and strings A itself leaves unannotated in most of its own texts
("in", "van") are dropped first (`self_consistency`), so common words do not flood the counts.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

CJK_LANGS = frozenset({"zh", "ja"})
MODES = ("raw", "mapped")
OUTCOMES = ("agree", "type_conflict", "boundary_conflict", "missing")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORDLIKE = re.compile(r"[^\W_]")  # a mention must contain a letter, digit or CJK character
_EXAMPLE_CONTEXT = 30
# What one Spark task emits: LABEL_CONFLICTS rows before merging (examples keep their sort keys).
PARTIAL_COLUMNS = ("mode", "dataset_a", "label_a", "dataset_b", "label_b", *OUTCOMES, "examples")


def script_of(lang: str) -> str:
    """'char' (character-level matching) for CJK languages, else 'token' (word-boundary aware)."""
    return "char" if lang in CJK_LANGS else "token"


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) of word and punctuation tokens; mentions and texts share this tokenization."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _as_row(sample: Any) -> dict:
    from dataclasses import asdict

    return asdict(sample)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


# ------------------------------------------------------------------------------------------ index


def mention_counts(samples: Iterable[Any]) -> Counter:
    """Counter of (dataset, lang, mention text, raw label, type) over the entities of samples.

    Works on `Sample` records and on silver/bronze row dicts; the Spark job computes the same counts
    with a groupBy and feeds them to `build_mention_index`.
    """
    counts: Counter = Counter()
    for s in samples:
        lang = _get(s, "lang") or "en"
        ds = _get(s, "dataset")
        for e in _get(s, "entities") or ():
            counts[(ds, lang, _get(e, "text"), _get(e, "label"), _get(e, "type") or "")] += 1
    return counts


def _majority(counter: Counter) -> str:
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def label_sets_of(samples: Iterable[Any]) -> dict[str, dict[str, set[str]]]:
    """{dataset: {"raw": lower-cased raw labels, "mapped": types}} annotated in the samples."""
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"raw": set(), "mapped": set()})
    for s in samples:
        sets = out[_get(s, "dataset")]
        for e in _get(s, "entities") or ():
            sets["raw"].add(_get(e, "label").lower())
            if _get(e, "type"):
                sets["mapped"].add(_get(e, "type"))
    return dict(out)


@dataclass
class LangIndex:
    """Mentions of one language: a prefix-closed hash map walked token by token (or char by char)."""

    char_level: bool
    # key (token level: tokens joined by one space; char level: the string) -> ((dataset, raw, type), ...)
    entries: dict[str, tuple[tuple[str, str, str], ...]] = field(default_factory=dict)
    # every mention key and every proper prefix of one (token prefixes; >= 2 characters) ->
    # (entries or (), whether a longer mention continues it): one lookup per step, early stop.
    nodes: dict[str, tuple[tuple, bool]] = field(default_factory=dict)


@dataclass
class MentionIndex:
    """Mentions of every dataset per language; see the module docstring."""

    langs: dict[str, LangIndex] = field(default_factory=dict)
    label_sets: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(li.entries) for li in self.langs.values())


def mention_key(text: str, lang: str) -> str:
    """The index key of a mention: space-joined tokens (token level) or the stripped string (CJK)."""
    text = text.strip()
    return text if script_of(lang) == "char" else " ".join(t for t, _, _ in tokenize(text))


def build_mention_index(
    counts: Mapping[tuple[str, str, str, str, str], int],
    label_sets: Mapping[str, Mapping[str, Iterable[str]]],
    *,
    min_chars: int = 2,
    max_tokens: int = 10,
    max_chars: int = 30,
    keep: Callable[[str, str, str], bool] | None = None,
) -> MentionIndex:
    """Index mention strings per (language, dataset) with their majority raw label and majority type.

    Args:
        counts: {(dataset, lang, text, raw label, type): n} from `mention_counts`.
        label_sets: {dataset: {"raw": labels, "mapped": types}} from `label_sets_of` (the coverage
            used to decide whether an unannotated occurrence counts as missing).
        min_chars: shorter mentions (after stripping) are not indexed (single letters/characters
            match everywhere and say nothing about label semantics).
        max_tokens / max_chars: longer mentions are not indexed (bounds the per-position cost).
        keep: optional filter (dataset, lang, key) -> bool, e.g. from `self_consistency`.
    """
    raw_votes: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    type_votes: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    for (ds, lang, text, label, typ), n in counts.items():
        text = (text or "").strip()
        if len(text) < min_chars or not _WORDLIKE.search(text):
            continue
        key = mention_key(text, lang)
        if not key or (script_of(lang) == "char" and len(key) > max_chars) or key.count(" ") >= max_tokens:
            continue
        if keep is not None and not keep(ds, lang, key):
            continue
        raw_votes[(lang, key, ds)][label.lower()] += n
        if typ:
            type_votes[(lang, key, ds)][typ] += n
    idx = MentionIndex(label_sets={d: {m: set(v) for m, v in s.items()} for d, s in label_sets.items()})
    for (lang, key, ds), votes in sorted(raw_votes.items()):
        li = idx.langs.get(lang)
        if li is None:
            li = idx.langs[lang] = LangIndex(char_level=script_of(lang) == "char")
        tv = type_votes.get((lang, key, ds))
        li.entries[key] = (*li.entries.get(key, ()), (ds, _majority(votes), _majority(tv) if tv else ""))
    for li in idx.langs.values():
        prefixes: set[str] = set()
        for key in li.entries:
            if li.char_level:
                prefixes.update(key[:j] for j in range(2, len(key)))
            else:
                parts = key.split(" ")
                prefixes.update(" ".join(parts[:j]) for j in range(1, len(parts)))
        li.nodes = {k: (li.entries.get(k, ()), k in prefixes) for k in prefixes.union(li.entries)}
    return idx


def find_mentions(index: MentionIndex, text: str, lang: str) -> list[tuple[int, int, str, tuple]]:
    """Every (start, end, key, entries) where an indexed mention of language `lang` occurs in `text`
    (all lengths, overlapping). Token level for space-separated languages, characters for CJK."""
    li = index.langs.get(lang)
    if li is None:
        return []
    node_of = li.nodes.get
    out = []
    if not li.char_level:
        words = _TOKEN.findall(text)
        n = len(words)
        hits = []
        for i in range(n):
            key, j = words[i], i + 1
            while (v := node_of(key)) is not None:
                if v[0]:
                    hits.append((i, j, key, v[0]))
                if not v[1] or j >= n:
                    break
                key, j = f"{key} {words[j]}", j + 1
        if hits:
            spans = [m.span() for m in _TOKEN.finditer(text)]
            out = [(spans[i][0], spans[j - 1][1], key, es) for i, j, key, es in hits]
    else:
        n = len(text)
        for i in range(n - 1):
            j = i + 2
            key = text[i:j]
            while (v := node_of(key)) is not None:
                if v[0]:
                    out.append((i, j, key, v[0]))
                if not v[1] or j >= n:
                    break
                j += 1
                key = text[i:j]
    return out


def self_consistency(index: MentionIndex, samples: Iterable[Any]) -> Counter:
    """{(dataset, lang, key): [occurrences, annotated]} of each dataset's mentions in its OWN texts.

    A string a dataset annotates only rarely where it occurs (e.g. "in" tagged once as a location
    among thousands of occurrences) is not that dataset's notion of an entity; screening it against
    other datasets would only count noise. Returns a Counter of (occurrences, annotated) pairs
    stored as two keys: (dataset, lang, key, "n") and (dataset, lang, key, "a").
    """
    out: Counter = Counter()
    for s in samples:
        if not isinstance(s, Mapping):
            s = _as_row(s)
        ds, lang, text = s["dataset"], s.get("lang") or "en", s["text"]
        spans = {(e["start"], e["end"]) for e in s.get("entities") or ()}
        own = [(a, b, k) for a, b, k, es in find_mentions(index, text, lang) if any(e[0] == ds for e in es)]
        for a, b, k, _ in _leftmost_longest([(a, b, k, k) for a, b, k in own]):
            out[(ds, lang, k, "n")] += 1
            if (a, b) in spans:
                out[(ds, lang, k, "a")] += 1
    return out


def consistent_keys(stats: Mapping[tuple, int], min_ratio: float = 0.5) -> set[tuple[str, str, str]]:
    """(dataset, lang, key) annotated in at least `min_ratio` of their occurrences in their own dataset."""
    keep = set()
    for (ds, lang, key, kind), n in stats.items():
        if kind == "n" and stats.get((ds, lang, key, "a"), 0) >= min_ratio * n:
            keep.add((ds, lang, key))
    return keep


# ------------------------------------------------------------------------------------------ screening


@dataclass
class _Acc:
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    examples: list[tuple[tuple, str]] = field(default_factory=list)  # ((order), example), k smallest


def _leftmost_longest(spans: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    spans.sort(key=lambda s: (s[0], s[0] - s[1]))
    out, last_end = [], -1
    for s in spans:
        if s[0] >= last_end:
            out.append(s)
            last_end = s[1]
    return out


class ConflictScreen:
    """Accumulates conflict counts over samples of dataset B; `rows()` gives partial result rows.

    Args:
        index: mentions of all datasets (`build_mention_index`).
        compatible: (type A, type B) -> bool for mapped mode (e.g. `Taxonomy.compatible`);
            equality when None.
        examples: examples kept per output row.
    """

    def __init__(
        self, index: MentionIndex, compatible: Callable[[str, str], bool] | None = None, examples: int = 3
    ) -> None:
        self.index = index
        self.compatible = compatible or (lambda a, b: a == b)
        self.k = examples
        self.acc: dict[tuple[str, str, str, str, str], _Acc] = {}
        self._cover_cache: dict[tuple[str, str, str], bool] = {}
        self._compat_cache: dict[tuple[str, str], bool] = {}

    def _covers(self, mode: str, dataset_b: str, label_a: str) -> bool:
        key = (mode, dataset_b, label_a)
        hit = self._cover_cache.get(key)
        if hit is None:
            labels = self.index.label_sets.get(dataset_b, {}).get(mode, set())
            if mode == "raw":
                hit = label_a in labels
            else:
                hit = any(self.compatible(label_a, t) for t in labels)
            self._cover_cache[key] = hit
        return hit

    def _same(self, mode: str, a: str, b: str) -> bool:
        if mode == "raw":
            return a == b
        hit = self._compat_cache.get((a, b))
        if hit is None:
            hit = self._compat_cache[(a, b)] = bool(self.compatible(a, b))
        return hit

    def add_sample(self, sample: Any) -> None:
        """Screen one sample (a row dict with dataset, lang, text, entities, sample_id, or a `Sample`)."""
        if not isinstance(sample, Mapping):
            sample = _as_row(sample)
        text, ds_b = sample["text"], sample["dataset"]
        matches = find_mentions(self.index, text, sample.get("lang") or "en")
        if not matches:
            return
        ents = sample.get("entities") or ()
        by_mode = {
            "raw": [(e["start"], e["end"], e["label"].lower()) for e in ents],
            "mapped": [(e["start"], e["end"], e["type"]) for e in ents if e.get("type")],
        }
        exact = {m: {(a, b): lb for a, b, lb in reversed(spans)} for m, spans in by_mode.items()}
        per_a: dict[str, dict[str, list]] = {}
        for start, end, _key, entries in matches:
            for ds_a, raw_a, type_a in entries:
                if ds_a == ds_b:
                    continue
                modes = per_a.get(ds_a)
                if modes is None:
                    modes = per_a[ds_a] = {"raw": [], "mapped": []}
                modes["raw"].append((start, end, raw_a, raw_a))
                if type_a:
                    modes["mapped"].append((start, end, type_a, raw_a))
        sid = str(sample.get("sample_id") or "")
        for ds_a, modes in per_a.items():
            for mode, spans in modes.items():
                for start, end, label_a, _ in _leftmost_longest(spans) if len(spans) > 1 else spans:
                    self._classify(
                        mode, ds_a, label_a, ds_b, start, end, text, exact[mode], by_mode[mode], sid
                    )

    def _classify(self, mode, ds_a, label_a, ds_b, start, end, text, exact, spans, sid) -> None:
        lb = exact.get((start, end))
        if lb is not None:
            outcome = 0 if self._same(mode, label_a, lb) else 1
        else:
            lb = next((b for s, e, b in spans if s < end and start < e), None)
            if lb is not None:
                outcome = 2
            elif self._covers(mode, ds_b, label_a):
                outcome, lb = 3, ""
            else:
                return
        key = (mode, ds_a, label_a, ds_b, lb)
        acc = self.acc.get(key)
        if acc is None:
            acc = self.acc[key] = _Acc()
        acc.counts[outcome] += 1
        if self.k:
            # Conflicts first, then a stable order: examples do not depend on partitioning.
            order = (0 if outcome else 1, sid, start)
            if len(acc.examples) < self.k or order < acc.examples[-1][0]:
                left = text[max(0, start - _EXAMPLE_CONTEXT) : start]
                right = text[end : end + _EXAMPLE_CONTEXT]
                acc.examples.append((order, f"{OUTCOMES[outcome]}: ...{left}[{text[start:end]}]{right}..."))
                acc.examples.sort()
                del acc.examples[self.k :]

    def add_samples(self, samples: Iterable[Any]) -> ConflictScreen:
        for s in samples:
            self.add_sample(s)
        return self

    def rows(self) -> list[dict]:
        """Partial rows (LABEL_CONFLICTS columns; examples still carry their sort keys)."""
        return [
            {
                "mode": mode,
                "dataset_a": a,
                "label_a": la,
                "dataset_b": b,
                "label_b": lb,
                **dict(zip(OUTCOMES, acc.counts, strict=True)),
                "examples": [f"{o[0]}{o[1]}{o[2]:09d}\x1f{ex}" for o, ex in acc.examples],
            }
            for (mode, a, la, b, lb), acc in self.acc.items()
        ]


def merge_partials(partials: Iterable[Mapping[str, Any]], examples: int = 3) -> list[dict]:
    """Sum partial rows by (mode, dataset_a, label_a, dataset_b, label_b); final LABEL_CONFLICTS rows.

    Ranked per mode by number of conflicts (type + boundary + missing), then by key.
    """
    merged: dict[tuple, dict] = {}
    for r in partials:
        key = (r["mode"], r["dataset_a"], r["label_a"], r["dataset_b"], r["label_b"])
        m = merged.get(key)
        if m is None:
            m = merged[key] = {
                k: key[i] for i, k in enumerate(("mode", "dataset_a", "label_a", "dataset_b", "label_b"))
            }
            m.update({o: 0 for o in OUTCOMES}, examples=[])
        for o in OUTCOMES:
            m[o] += int(r[o])
        m["examples"].extend(r["examples"] or ())
    out = []
    for m in merged.values():
        m["mentions"] = sum(m[o] for o in OUTCOMES)
        conflicts = m["mentions"] - m["agree"]
        m["conflict_ratio"] = conflicts / m["mentions"] if m["mentions"] else 0.0
        m["examples"] = [e.split("\x1f", 1)[-1] for e in sorted(set(m["examples"]))[:examples]]
        out.append(m)
    out.sort(
        key=lambda m: (
            m["mode"],
            -(m["mentions"] - m["agree"]),
            m["dataset_a"],
            m["label_a"],
            m["dataset_b"],
            m["label_b"],
        )
    )
    return out


def screen_batches(
    batches: Iterable[Any], index: MentionIndex, compatible: Callable[[str, str], bool] | None, examples: int
) -> Iterator[dict]:
    """Partial rows for Arrow record batches of samples (what each Spark task runs)."""
    screen = ConflictScreen(index, compatible, examples)
    for b in batches:
        screen.add_samples(b.to_pylist())
    yield from screen.rows()


@dataclass
class Screening:
    """What one screening produced: LABEL_CONFLICTS rows, index sizes and seconds per phase."""

    rows: list[dict]
    indexed_mentions: int  # mention strings indexed before the self-consistency filter
    screened_mentions: int  # mention strings kept and screened
    seconds: dict[str, float]  # index_s, self_consistency_s, scan_s, merge_s, total_s


def screen(
    samples: Iterable[Any],
    compatible: Callable[[str, str], bool] | None = None,
    *,
    examples: int = 3,
    min_chars: int = 2,
    min_self_ratio: float = 0.5,
) -> Screening:
    """Local, one-process screening of samples (any datasets, mapped or not) in both modes.

    Indexes every dataset's mentions, keeps those the dataset annotates in at least
    `min_self_ratio` of their own occurrences (0 keeps all), scans every text once.
    The local job and the benchmark both run this; the Spark job runs the same pieces per partition.
    """
    samples = list(samples)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    counts, sets = mention_counts(samples), label_sets_of(samples)
    index = build_mention_index(counts, sets, min_chars=min_chars)
    indexed = len(index)
    t["index_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if min_self_ratio > 0:
        keep = consistent_keys(self_consistency(index, samples), min_self_ratio)
        index = build_mention_index(
            counts, sets, min_chars=min_chars, keep=lambda d, lg, k: (d, lg, k) in keep
        )
    t["self_consistency_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    scan = ConflictScreen(index, compatible, examples).add_samples(samples)
    t["scan_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    rows = merge_partials(scan.rows(), examples)
    t["merge_s"] = time.perf_counter() - t3
    t["total_s"] = time.perf_counter() - t0
    return Screening(rows, indexed, len(index), t)


def screen_conflicts(
    samples: Iterable[Any],
    compatible: Callable[[str, str], bool] | None = None,
    *,
    examples: int = 3,
    min_chars: int = 2,
    min_self_ratio: float = 0.5,
) -> list[dict]:
    """The LABEL_CONFLICTS rows of `screen` (see `merge_partials`)."""
    return screen(
        samples, compatible, examples=examples, min_chars=min_chars, min_self_ratio=min_self_ratio
    ).rows


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Totals per mode: mentions, agree, type/boundary conflicts, missing, and their rates.

    `type_conflict_rate` = type conflicts / (agree + type conflicts): among occurrences both datasets
    annotate with the same span, how often the labels disagree (what a taxonomy can fix).
    """
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        t = out.setdefault(r["mode"], {"mentions": 0, **{o: 0 for o in OUTCOMES}})
        t["mentions"] += r["mentions"]
        for o in OUTCOMES:
            t[o] += r[o]
    for t in out.values():
        same_span = t["agree"] + t["type_conflict"]
        t["type_conflict_rate"] = t["type_conflict"] / same_span if same_span else 0.0
        t["conflict_rate"] = (t["mentions"] - t["agree"]) / t["mentions"] if t["mentions"] else 0.0
    return out


def pair_matrix(rows: Iterable[Mapping[str, Any]], mode: str) -> tuple[list[str], list[list[float]]]:
    """(datasets, matrix[a][b] = type-conflict rate of A's mentions found annotated in B; NaN if none)."""
    same: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    names: set[str] = set()
    for r in rows:
        if r["mode"] != mode:
            continue
        names.update((r["dataset_a"], r["dataset_b"]))
        c = same[(r["dataset_a"], r["dataset_b"])]
        c[0] += r["type_conflict"]
        c[1] += r["agree"] + r["type_conflict"]
    order = sorted(names)
    nan = float("nan")
    matrix = [[(same[(a, b)][0] / same[(a, b)][1]) if same[(a, b)][1] else nan for b in order] for a in order]
    return order, matrix

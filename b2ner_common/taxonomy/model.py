"""The universal entity taxonomy: types with stable ids, English/Chinese names, definitions and parents.

The data lives in `data/<version>/types.tsv` (one row per type, tab-separated). Names are what models
see in prompts, so each English and Chinese name is unique (one name, one definition) and free of the
characters that delimit labels in prompts and answers (`,` `;` `:`).

Hierarchy convention: when a label set contains a type and one of its descendants (e.g. `location` and
`country`), a mention takes the most specific type that applies; `location` then means "a location
that is not a country". `Taxonomy.compatible` is the relation used by conflict screening.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
COLUMNS = ("id", "en", "zh", "parent", "definition_en", "definition_zh", "examples")
# Characters that would break "Label Set: a, b" prompts or "label: entity; label: entity" answers.
FORBIDDEN_NAME_CHARS = frozenset(",;:，；：、\t\n")
ID_RE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
ZH_LANGS = frozenset({"zh"})


class TaxonomyError(ValueError):
    """A taxonomy or mapping file that cannot be used; the message names the file, line and fix."""


@dataclass(frozen=True, slots=True)
class EntityType:
    id: str
    en: str
    zh: str
    parent: str  # parent type id; "" for a top-level category
    definition_en: str
    definition_zh: str
    examples: tuple[str, ...] = ()
    source: str = ""  # "types.tsv:LINE" for error messages

    def name(self, lang: str) -> str:
        """The label name shown to a model in `lang` (Chinese name for zh, else English)."""
        return self.zh if lang in ZH_LANGS else self.en

    def definition(self, lang: str) -> str:
        return self.definition_zh if lang in ZH_LANGS else self.definition_en


@dataclass
class Taxonomy:
    """A loaded taxonomy with lookups by id, English name and Chinese name.

    Build with `load_taxonomy(version)`; `validate_types` lists what is wrong with a set of types.
    Duplicate keys keep their first occurrence here (validation reports the duplicates).
    """

    version: str
    types: tuple[EntityType, ...]
    _by_id: dict[str, EntityType] = field(default_factory=dict, repr=False)
    _by_en: dict[str, EntityType] = field(default_factory=dict, repr=False)
    _by_zh: dict[str, EntityType] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for t in self.types:
            self._by_id.setdefault(t.id, t)
            self._by_en.setdefault(t.en, t)
            self._by_zh.setdefault(t.zh, t)

    def __len__(self) -> int:
        return len(self.types)

    def __iter__(self) -> Iterator[EntityType]:
        return iter(self.types)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.find(key) is not None

    def find(self, key: str) -> EntityType | None:
        """The type whose id, English name or Chinese name is `key` (English names are case-insensitive)."""
        return (
            self._by_id.get(key)
            or self._by_en.get(key)
            or self._by_en.get(key.lower())
            or self._by_zh.get(key)
        )

    def get(self, key: str) -> EntityType:
        """Like `find`, but raises KeyError naming close matches when `key` is unknown."""
        t = self.find(key)
        if t is None:
            raise KeyError(f"unknown taxonomy type {key!r} (taxonomy {self.version}){self._suggest(key)}")
        return t

    def _suggest(self, key: str) -> str:
        import difflib

        close = difflib.get_close_matches(key.lower(), list(self._by_en), n=3, cutoff=0.6)
        return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""

    def name(self, key: str, lang: str) -> str:
        """Display name of type `key` (id or name) in `lang`."""
        return self.get(key).name(lang)

    def label_namer(self) -> Callable[[str, str], str]:
        """A `(type id or English name, lang) -> shown name` function: the taxonomy's display name in `lang`
        (Chinese names for "zh", English for any other language); unknown types are shown as they are.

        What every model family shows for a type, in training prompts/labels and at prediction time.
        """

        def name(key: str, lang: str) -> str:
            try:
                return self.name(key, lang if lang in ("en", "zh") else "en")
            except (KeyError, ValueError, LookupError):
                return key

        return name

    def definitions(self, lang: str = "en") -> dict[str, str]:
        """{English name: definition in `lang`} for every type (prompts with label descriptions)."""
        return {t.en: t.definition(lang) for t in self.types}

    def ancestors(self, key: str) -> list[EntityType]:
        """Parent, grandparent, ... of a type (nearest first); stops at a cycle or unknown parent."""
        out: list[EntityType] = []
        seen = set()
        t = self.get(key)
        while t.parent and t.parent not in seen:
            seen.add(t.parent)
            p = self._by_id.get(t.parent)
            if p is None:
                break
            out.append(p)
            t = p
        return out

    def category(self, key: str) -> EntityType:
        """The top-level (coarse) category of a type."""
        chain = self.ancestors(key)
        return chain[-1] if chain else self.get(key)

    def children(self, key: str) -> list[EntityType]:
        tid = self.get(key).id
        return [t for t in self.types if t.parent == tid]

    @functools.cached_property
    def _ancestor_ids(self) -> dict[str, frozenset[str]]:
        return {t.id: frozenset(a.id for a in self.ancestors(t.id)) for t in self.types}

    def compatible(self, a: str, b: str) -> bool:
        """True when the types are equal or one is an ancestor of the other (hierarchy convention)."""
        ta, tb = self.find(a), self.find(b)
        if ta is None or tb is None:
            return a == b
        return ta.id == tb.id or ta.id in self._ancestor_ids[tb.id] or tb.id in self._ancestor_ids[ta.id]


def parse_types(lines: Iterable[str], source: str = "types.tsv") -> list[EntityType]:
    """Parse the TSV rows of a taxonomy file; raises TaxonomyError naming `source:line` on a bad row."""
    types: list[EntityType] = []
    header_seen = False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if not header_seen:
            if tuple(cols) != COLUMNS:
                raise TaxonomyError(
                    f"{source}:{lineno}: header must be {' <TAB> '.join(COLUMNS)}, got {cols}"
                )
            header_seen = True
            continue
        if len(cols) != len(COLUMNS):
            raise TaxonomyError(
                f"{source}:{lineno}: expected {len(COLUMNS)} tab-separated columns {COLUMNS}, got {len(cols)}"
            )
        tid, en, zh, parent, def_en, def_zh, examples = (c.strip() for c in cols)
        exs = tuple(x.strip() for x in examples.split(" ; ") if x.strip())
        types.append(EntityType(tid, en, zh, parent, def_en, def_zh, exs, f"{source}:{lineno}"))
    if not header_seen:
        raise TaxonomyError(f"{source}: no header row ({' <TAB> '.join(COLUMNS)})")
    return types


def validate_types(types: Iterable[EntityType]) -> list[str]:
    """Every problem of a type list as a message naming the row: duplicates, missing languages,
    bad names, unknown parents, cycles. Empty when the taxonomy is usable."""
    types = list(types)
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    ids = {t.id for t in types}
    for t in types:
        where = t.source or t.id
        for kind, value in (("id", t.id), ("English name", t.en), ("Chinese name", t.zh)):
            if not value:
                problems.append(f"{where}: missing {kind}")
                continue
            key = (kind, value.lower() if kind == "English name" else value)
            if key in seen:
                problems.append(f"{where}: duplicate {kind} {value!r} (first at {seen[key]})")
            else:
                seen[key] = where
        if t.id and not ID_RE.match(t.id):
            problems.append(f"{where}: id {t.id!r} must be lower-case snake_case")
        if t.en and t.en != t.en.lower():
            problems.append(f"{where}: English name {t.en!r} must be lower case")
        for kind, value in (("English name", t.en), ("Chinese name", t.zh)):
            bad = sorted(set(value) & FORBIDDEN_NAME_CHARS)
            if bad:
                problems.append(f"{where}: {kind} {value!r} contains {bad} (breaks prompt/answer parsing)")
        if not t.definition_en:
            problems.append(f"{where}: missing English definition")
        if not t.definition_zh:
            problems.append(f"{where}: missing Chinese definition")
        if t.zh and not re.search(r"[\u4e00-\u9fff]|^[A-Z]+$", t.zh):
            problems.append(f"{where}: Chinese name {t.zh!r} has no Chinese characters")
        if t.definition_zh and not re.search(r"[\u4e00-\u9fff]", t.definition_zh):
            problems.append(f"{where}: Chinese definition has no Chinese characters")
        if t.parent and t.parent not in ids:
            problems.append(f"{where}: parent {t.parent!r} is not a type id")
        if t.parent == t.id:
            problems.append(f"{where}: type is its own parent")
    parent = {t.id: t.parent for t in types}
    for t in types:
        node, steps = t.parent, 0
        while node and steps <= len(types):
            if node == t.id:
                problems.append(f"{t.source or t.id}: parent chain of {t.id!r} has a cycle")
                break
            node, steps = parent.get(node, ""), steps + 1
    return problems


def taxonomy_dir(version: str) -> Path:
    d = DATA_DIR / version
    if not (d / "types.tsv").is_file():
        have = sorted(p.name for p in DATA_DIR.iterdir() if (p / "types.tsv").is_file())
        raise TaxonomyError(f"taxonomy version {version!r} not found under {DATA_DIR} (available: {have})")
    return d


@functools.lru_cache(maxsize=8)
def load_taxonomy(version: str = "v1", path: str | None = None) -> Taxonomy:
    """Load and validate a taxonomy version shipped in the package (or the TSV at `path`).

    Raises TaxonomyError listing every problem when the file is not valid. Cached per (version, path).
    """
    file = Path(path) if path else taxonomy_dir(version) / "types.tsv"
    with open(file, encoding="utf-8") as fh:
        types = parse_types(fh, source=str(file))
    problems = validate_types(types)
    if problems:
        raise TaxonomyError(f"taxonomy {file} is invalid:\n  " + "\n  ".join(problems))
    return Taxonomy(version=version, types=tuple(types))

"""The corpus catalog: which files form which dataset, split, language and format. Data, not code.

The package ships `catalogs/shared_corpora.yaml` for the corpora in ../shared/corpora; users add their
own YAML files of the same shape (config `ingest.catalogs`). A catalog file:

    version: 1
    root: .            # optional: file paths are relative to this folder (relative to the catalog file);
                       # without it they are relative to `ingest.corpora`
    datasets:
      my_corpus:
        lang: en                      # en zh de es nl ru (any short code)
        role: train_pool              # train_pool | ood_dev | duplicate
        format: conll                 # see b2ner_common.ingest.readers.FORMATS
        options: {delimiter: tab}     # format options (unknown keys are errors)
        encoding: utf-8
        files:
          - {path: my_corpus/train.txt, split: train, expected: 1000}
        skipped:                      # files deliberately not ingested, with the reason (documentation)
          - {path: my_corpus/test_unlabeled.txt, reason: no labels}
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from b2ner_common.config import ConfigError
from b2ner_common.ingest.readers import FormatError, ReaderOptions, make_options

ROLES = ("train_pool", "ood_dev", "duplicate")
DEFAULT_ROLES = ("train_pool", "ood_dev")
BUILTIN = "shared_corpora.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(_Model):
    path: str
    split: str
    expected: int | None = None  # sentence count published with the corpus (SOURCE.txt)
    lang: str | None = None  # overrides the dataset's language for this file
    options: dict[str, Any] = Field(default_factory=dict)  # overrides of the dataset's format options


class SkippedFile(_Model):
    path: str
    reason: str


class DatasetEntry(_Model):
    lang: str
    role: Literal["train_pool", "ood_dev", "duplicate"] = "train_pool"
    format: str
    options: dict[str, Any] = Field(default_factory=dict)
    encoding: str = "utf-8"
    files: list[FileEntry]
    skipped: list[SkippedFile] = Field(default_factory=list)
    notes: str = ""


class CatalogFile(_Model):
    version: int = 1
    root: str | None = None
    datasets: dict[str, DatasetEntry]


@dataclass(frozen=True)
class FileTask:
    """One catalog file resolved against a corpora root: everything a reader needs."""

    dataset: str
    split: str
    lang: str
    role: str
    format: str
    options: ReaderOptions
    encoding: str
    path: Path  # absolute
    source: str  # relative path used in `source` columns
    expected: int | None


@dataclass(frozen=True)
class Catalog:
    datasets: dict[str, DatasetEntry]
    roots: dict[str, Path | None]  # dataset -> its catalog's root (None: relative to ingest.corpora)
    origins: dict[str, str]  # dataset -> catalog file it came from

    def tasks(
        self, corpora: str | Path, datasets: list[str] | None = None, roles=DEFAULT_ROLES
    ) -> list[FileTask]:
        """Files to ingest: the named datasets (any role), or every dataset whose role is in `roles`."""
        names = select_datasets(self, datasets, roles)
        out: list[FileTask] = []
        for name in names:
            d = self.datasets[name]
            root = self.roots[name] or Path(corpora)
            for f in d.files:
                opts = make_options(d.format, {**d.options, **f.options})
                out.append(
                    FileTask(
                        dataset=name,
                        split=f.split,
                        lang=f.lang or d.lang,
                        role=d.role,
                        format=d.format,
                        options=opts,
                        encoding=d.encoding,
                        path=(root / f.path).resolve(),
                        source=f.path,
                        expected=f.expected,
                    )
                )
        return out

    def roles(self) -> dict[str, str]:
        """dataset -> role (train_pool, ood_dev, duplicate)."""
        return {k: v.role for k, v in self.datasets.items()}


def select_datasets(cat: Catalog, datasets: list[str] | None, roles=DEFAULT_ROLES) -> list[str]:
    if datasets:
        unknown = [d for d in datasets if d not in cat.datasets]
        if unknown:
            raise ConfigError(
                f"unknown dataset(s) {', '.join(unknown)}; the catalogs define: {', '.join(sorted(cat.datasets))}"
            )
        return list(dict.fromkeys(datasets))
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ConfigError(f"unknown role(s) {bad}; use {', '.join(ROLES)}")
    return [k for k, v in cat.datasets.items() if v.role in roles]


def builtin_catalog_path() -> Path:
    return Path(str(resources.files("b2ner_common.ingest.catalogs").joinpath(BUILTIN)))


def parse_catalog(text: str, origin: str, base_dir: Path | None = None) -> CatalogFile:
    """Validate one catalog document. Raises ConfigError naming the file and the bad key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: top level must be a mapping with a 'datasets' key")
    try:
        cat = CatalogFile.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError(f"invalid catalog {origin}:\n" + "\n".join(lines)) from None
    for name, d in cat.datasets.items():
        if not d.files:
            raise ConfigError(f"{origin}: dataset {name!r} lists no files")
        seen: set[str] = set()
        for f in d.files:
            if f.path in seen:
                # Read twice, its records would get two source positions each and break the key.
                raise ConfigError(
                    f"{origin}: dataset {name!r} lists file {f.path} twice; list each file once"
                )
            seen.add(f.path)
        for f in d.files:
            try:
                make_options(d.format, {**d.options, **f.options})
            except FormatError as e:
                raise ConfigError(f"{origin}: dataset {name!r}, file {f.path}: {e}") from None
        try:
            ascii_compatible = "\n a".encode(d.encoding) == b"\n a"
        except LookupError:
            raise ConfigError(f"{origin}: dataset {name!r}: unknown encoding {d.encoding!r}") from None
        if not ascii_compatible:
            # Files are cut into work units at newline bytes, which UTF-16/32 do not have as single bytes.
            raise ConfigError(
                f"{origin}: dataset {name!r}: encoding {d.encoding!r} is not ASCII-compatible, so files "
                f"cannot be cut at line boundaries; convert them to UTF-8 "
                f"(iconv -f {d.encoding} -t UTF-8 IN > OUT) and set encoding: utf-8"
            )
    return cat


def load_catalog(paths: list[str | Path] | None = None, builtin: bool = True) -> Catalog:
    """The built-in catalog (unless builtin=False) plus the user catalog files, in order.

    A dataset defined twice is an error naming both files.
    """
    files: list[Path] = ([builtin_catalog_path()] if builtin else []) + [Path(p) for p in paths or []]
    datasets: dict[str, DatasetEntry] = {}
    roots: dict[str, Path | None] = {}
    origins: dict[str, str] = {}
    for p in files:
        if not p.is_file():
            raise ConfigError(f"catalog file {p} does not exist (ingest.catalogs)")
        cat = parse_catalog(p.read_text(encoding="utf-8"), str(p))
        root = (p.parent / cat.root).resolve() if cat.root is not None else None
        for name, d in cat.datasets.items():
            if name in datasets:
                raise ConfigError(f"dataset {name!r} is defined in both {origins[name]} and {p}")
            datasets[name] = d
            roots[name] = root
            origins[name] = str(p)
    return Catalog(datasets=datasets, roots=roots, origins=origins)

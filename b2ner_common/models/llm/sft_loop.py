"""SFT model side: load a local base model, wrap it with LoRA, the loss, one optimizer step, checkpoints.

Engine-free (no Ray, no DeepSpeed import at module level): `TorchBackend` covers single-process and
DDP; `DeepSpeedBackend` wraps an already-initialized DeepSpeed engine (ray_train builds it).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from b2ner_common.models.llm.sft_data import IGNORE_INDEX, StepPlan

# LoRA targets per architecture (`config.model_type`): the attention projections, as in B2NER.
TARGET_MODULES: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "internlm2": ["wqkv", "wo"],
    "baichuan": ["W_pack", "o_proj"],
    "bloom": ["query_key_value", "dense"],
    "gpt_neox": ["query_key_value", "dense"],
    "falcon": ["query_key_value", "dense"],
    "phi3": ["qkv_proj", "o_proj"],
}


# The official B2NER recipe: the query/key/value projections only (no output projection); one fused
# module where the architecture fuses them (InternLM2's `wqkv`, Baichuan's `W_pack`, Bloom's `query_key_value`).
QKV_MODULES: dict[str, list[str]] = {
    **{t: ["q_proj", "k_proj", "v_proj"] for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2")},
    "internlm2": ["wqkv"],
    "baichuan": ["W_pack"],
    "bloom": ["query_key_value"],
    "gpt_neox": ["query_key_value"],
    "falcon": ["query_key_value"],
    "phi3": ["qkv_proj"],
}
LORA_TARGETS = {"attention": TARGET_MODULES, "qkv": QKV_MODULES}


def target_modules_for(
    model_type: str, configured: Sequence[str] = (), preset: str = "attention"
) -> list[str]:
    """Configured modules if any, else the architecture's modules for `preset` (train.llm.lora_targets):
    "attention" = q/k/v/o projections (our default), "qkv" = q/k/v only (the official B2NER recipe).
    The error names the fix."""
    if configured:
        return list(configured)
    table = LORA_TARGETS[preset]
    try:
        return table[model_type]
    except KeyError:
        raise ValueError(
            f"no default LoRA target modules for model_type {model_type!r}; set train.llm.target_modules "
            f"(known: {sorted(table)})"
        ) from None


def load_base(
    model_dir: str | Path,
    *,
    bf16: bool = False,
    adapter_dir: str | Path | None = None,
    trust_remote_code: bool = False,
):
    """(model, tokenizer) from a local directory, no network; the error names missing files.

    `adapter_dir` (a published or earlier peft adapter) supplies the tokenizer when it ships one.
    A tokenizer without a pad token gets pad = EOS (padding is masked out of attention and loss).
    trust_remote_code (model.trust_remote_code): run the code a directory ships (InternLM2); without it such
    a directory is refused with the fix named.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from b2ner_common.models.llm.predictor import check_model_dir, check_remote_code

    base = check_model_dir(model_dir)
    tok_dir = base
    if adapter_dir is not None and (Path(adapter_dir) / "tokenizer_config.json").is_file():
        tok_dir = Path(adapter_dir)
    check_remote_code([base, tok_dir], trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(
        str(tok_dir), local_files_only=True, trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        str(base),
        local_files_only=True,
        dtype=torch.bfloat16 if bf16 else torch.float32,
        trust_remote_code=trust_remote_code,
    )
    return model, tokenizer


def wrap_lora(
    model: Any,
    *,
    r: int = 32,
    alpha: int = 64,
    dropout: float = 0.05,
    target_modules: Sequence[str] = (),
    adapter_dir: str | Path | None = None,
    gradient_checkpointing: bool = False,
    lora_targets: str = "attention",
):
    """A trainable peft model: a fresh LoRA, or `adapter_dir` loaded trainable (continue training).

    target_modules empty: the architecture's modules for `lora_targets` (`target_modules_for`)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs (no enable_input_require_grads hack).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if adapter_dir is not None:
        from b2ner_common.models.llm.predictor import check_model_dir

        check_model_dir(adapter_dir, adapter=True)
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True, local_files_only=True)
    cfg = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules_for(model.config.model_type, target_modules, lora_targets),
        task_type="CAUSAL_LM",
        bias="none",
    )
    return get_peft_model(model, cfg)


def check_packing(model: Any, *, seed: int = 0) -> None:
    """Refuse packing for a model whose packed rows are not the same as separate examples.

    Packing (`collate_packed`) relies on the model separating examples by restarting `position_ids`.
    Architectures that ignore position ids or build their own mask (Bloom's ALiBi, InternLM2's and
    Baichuan's own code) let an example attend to the one before it. On a tiny random batch this checks
    (1) that changing the first example of a packed row leaves the second example's logits unchanged, and
    (2) that packed logits equal separate forwards. Raises ValueError naming the architecture and the fix.
    """
    import torch

    from b2ner_common.models.llm.sft_data import Example, collate_packed

    vocab = int(model.config.vocab_size)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    a, a2, b = (torch.randint(4, vocab, (n,), generator=gen).tolist() for n in (7, 7, 5))

    def packed(first: list[int]):
        batch = collate_packed([[Example(first, first), Example(b, b)]], pad_id=0)
        return (
            model(
                input_ids=batch["input_ids"].to(device),
                position_ids=batch["position_ids"].to(device),
                use_cache=False,
            )
            .logits[0]
            .float()
        )

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            one, two = packed(a), packed(a2)
            alone = [
                model(input_ids=torch.tensor([x], device=device), use_cache=False).logits[0].float()
                for x in (a, b)
            ]
    finally:
        model.train(was_training)
    fp32 = next(model.parameters()).dtype == torch.float32
    scale = float(max(t.abs().max() for t in alone))
    tol = 1e-3 if fp32 else 3e-2 * max(1.0, scale)  # bf16/fp16: kernel-shape noise, not leakage
    leak = float((one[len(a) :] - two[len(a) :]).abs().max())
    diff = max(float((one[: len(a)] - alone[0]).abs().max()), float((one[len(a) :] - alone[1]).abs().max()))
    if leak > tol or diff > tol:
        arch = getattr(model.config, "model_type", type(model).__name__)
        raise ValueError(
            f"packing is not safe for model_type {arch!r}: examples packed into one row "
            f"{'see each other' if leak > tol else 'differ from separate forwards'} "
            f"(max logit difference {max(leak, diff):.2e} > {tol:.0e}); this architecture does not separate "
            "examples by position_ids. Set train.llm.packing=false (one example per row, padded)."
        )


def lm_loss(model: Any, batch: dict[str, Any], num_items: float):
    """Summed next-token cross-entropy over target tokens / `num_items`.

    Token average (no `loss_weights` in the batch): num_items = the global batch's target tokens, so every
    target token weighs the same whatever the packing and accumulation. Example average
    (`train.llm.loss_average: example`): the batch carries `loss_weights` = 1 / (target tokens of the
    token's example) and num_items = the global batch's examples, so every example weighs the same (a
    short " None" answer as much as a long one). DDP/ZeRO then average the per-worker gradients, so the
    caller passes num_items / world_size to each worker.
    """
    import torch.nn.functional as F

    device = next(p.device for p in model.parameters())
    inputs = {k: v.to(device) for k, v in batch.items() if k not in ("labels", "loss_weights")}
    labels = batch["labels"].to(device)
    logits = model(**inputs, use_cache=False).logits
    per_token = F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(),
        labels[:, 1:].flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    if "loss_weights" in batch:
        per_token = per_token * batch["loss_weights"].to(device)[:, 1:].flatten()
    return per_token.sum() / max(num_items, 1)


def cosine_schedule(total_steps: int, warmup_ratio: float):
    """LambdaLR factor: linear warm-up over warmup_ratio of the steps, then cosine decay to 0."""
    warm = max(0, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def constant_schedule(total_steps: int, warmup_ratio: float):
    """LambdaLR factor: linear warm-up over warmup_ratio of the steps, then the peak LR to the end (the
    official B2NER DeepSpeed config's warm-up scheduler, which overrides the cosine one it also names)."""
    warm = max(0, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        return (step + 1) / warm if step < warm else 1.0

    return factor


LR_SCHEDULES = {"cosine": cosine_schedule, "constant": constant_schedule}


def make_optimizer(
    model: Any,
    *,
    lr: float,
    betas: Sequence[float],
    weight_decay: float,
    total_steps: int,
    warmup_ratio: float,
    schedule: str = "cosine",
):
    """AdamW over the trainable (LoRA) parameters + the warm-up scheduler: then cosine decay to 0
    (`schedule="cosine"`, our default) or constant (`"constant"`, the official B2NER recipe)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LR_SCHEDULES[schedule](total_steps, warmup_ratio))
    return opt, sched


class TorchBackend:
    """Plain torch (one process, or DDP via `ddp_model`): accumulate, clip, step."""

    def __init__(
        self, model: Any, optimizer: Any, scheduler: Any, *, max_grad_norm: float = 1.0, ddp_model: Any = None
    ) -> None:
        self.model = model  # the peft model (for saving)
        self.forward_model = ddp_model or model
        self.optimizer, self.scheduler, self.max_grad_norm = optimizer, scheduler, max_grad_norm
        self.ddp = ddp_model is not None

    def accumulate(self, last: bool):
        # DDP all-reduces on every backward unless told not to: only the last micro-step syncs.
        return contextlib.nullcontext() if (last or not self.ddp) else self.forward_model.no_sync()

    def backward(self, loss: Any, last: bool) -> None:
        loss.backward()

    def step(self) -> None:
        import torch

        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.max_grad_norm
            )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])


class DeepSpeedBackend:
    """A DeepSpeed engine (ZeRO-2/3); the accumulation boundary is set per micro-step because the number
    of micro-batches per step varies with packing."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.model = engine.module
        self.forward_model = engine

    def accumulate(self, last: bool):
        self.engine.set_gradient_accumulation_boundary(last)
        return contextlib.nullcontext()

    def backward(self, loss: Any, last: bool) -> None:
        # The loss is already normalized over the global batch: no 1/gas scaling.
        self.engine.backward(loss, scale_wrt_gas=False)
        self.engine.step()  # a no-op except at the boundary (clip, optimizer, scheduler)

    def step(self) -> None:
        return None

    def lr(self) -> float:
        return float(self.engine.get_lr()[0])


def train_step(backend: Any, plan: StepPlan, world: int = 1) -> float:
    """One optimizer step over this worker's micro-batches; returns this worker's summed loss share.

    Summed over workers (or multiplied by world for a single worker's view) it is the global batch's
    mean target-token loss.
    """
    total = 0.0
    per_worker_items = plan.num_items / world
    n = len(plan.micro_batches)
    for i, batch in enumerate(plan.micro_batches):
        last = i == n - 1
        with backend.accumulate(last):
            loss = lm_loss(backend.forward_model, batch, per_worker_items)
            backend.backward(loss, last)
        total += float(loss.detach())
    backend.step()
    return total / world


# ------------------------------------------------------------------------------------ checkpoints

STATE_FILE = "trainer_state.json"
ADAPTER_DIR = "adapter"


def save_adapter(model: Any, out_dir: str | Path, tokenizer: Any = None) -> Path:
    """Save only the LoRA adapter (+ tokenizer so the folder is self-contained for predict)."""
    out = Path(out_dir)
    model.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


def save_torch_state(ckpt_dir: str | Path, backend: TorchBackend, state: dict, tokenizer: Any = None) -> None:
    """Adapter + optimizer + scheduler + trainer state (step, epoch, ...) into `ckpt_dir`."""
    import torch

    d = Path(ckpt_dir)
    save_adapter(backend.model, d / ADAPTER_DIR, tokenizer)
    torch.save(
        {"optimizer": backend.optimizer.state_dict(), "scheduler": backend.scheduler.state_dict()},
        d / "optimizer.pt",
    )
    (d / STATE_FILE).write_text(json.dumps(state, sort_keys=True))


def load_adapter_weights(model: Any, adapter_dir: str | Path) -> None:
    """Load saved LoRA weights into an already-wrapped peft model (same LoRA config)."""
    from peft import set_peft_model_state_dict

    d = Path(adapter_dir)
    if (d / "adapter_model.safetensors").is_file():
        from safetensors.torch import load_file

        sd = load_file(str(d / "adapter_model.safetensors"))
    else:
        import torch

        sd = torch.load(d / "adapter_model.bin", map_location="cpu", weights_only=True)
    set_peft_model_state_dict(model, sd)


def load_torch_state(ckpt_dir: str | Path, backend: TorchBackend) -> dict:
    """Restore what `save_torch_state` wrote; returns the trainer state dict."""
    import torch

    d = Path(ckpt_dir)
    load_adapter_weights(backend.model, d / ADAPTER_DIR)
    opt = torch.load(d / "optimizer.pt", map_location="cpu", weights_only=True)  # tensors and numbers only
    backend.optimizer.load_state_dict(opt["optimizer"])
    backend.scheduler.load_state_dict(opt["scheduler"])
    return json.loads((d / STATE_FILE).read_text())

"""`llm` family: a causal LM (optionally + a peft LoRA adapter) prompted in the B2NER format.

Backends: `hf` (transformers `generate`, batched, left padding, greedy; CPU or GPU) and `vllm` (GPU only,
LoRA through `LoRARequest`). Both load from local directories only: nothing is downloaded.
Per text: the label set (names; definitions are not part of the B2NER prompt) and the language pick the
prompt; the answer is parsed to character offsets by `b2ner_common.parsing`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from b2ner_common.models.base import LabelSpec, per_text_label_sets
from b2ner_common.parsing import parse_answer
from b2ner_common.prompts import format_prompt
from b2ner_common.schema import PredictedEntity, Prediction

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[^\W\d_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def detect_lang(text: str) -> str:
    """ "zh" when CJK characters are at least as many as Latin-script words (a CJK character ~ a word)."""
    cjk = len(_CJK.findall(text))
    return "zh" if cjk and cjk >= len(_LATIN_WORD.findall(text)) else "en"


def check_model_dir(path: str | Path, *, adapter: bool = False) -> Path:
    """Validate a local model (or LoRA adapter) directory; the error names the missing files."""
    p = Path(path)
    if not str(path) or not p.is_dir():
        raise FileNotFoundError(
            f"model directory {str(path)!r} does not exist: set model.path (and model.base_model for a LoRA adapter) "
            "to a local directory; nothing is downloaded"
        )
    names = {f.name for f in p.iterdir()}
    if adapter:
        missing = [f for f in ("adapter_config.json",) if f not in names]
        if not ({"adapter_model.safetensors", "adapter_model.bin"} & names):
            missing.append("adapter_model.safetensors (or adapter_model.bin)")
    else:
        missing = [] if "config.json" in names else ["config.json"]
        if not (set(_WEIGHT_FILES) & names) and not any(n.endswith(".safetensors") for n in names):
            missing.append("model.safetensors (or pytorch_model.bin / a sharded index)")
    if missing:
        kind = "LoRA adapter" if adapter else "model"
        raise FileNotFoundError(f"{kind} directory {p} is missing {', '.join(missing)}")
    return p


def custom_code_parts(model_dir: str | Path) -> list[str]:
    """What in a local model (or tokenizer) directory runs code shipped in the directory itself.

    A part needs it when its JSON names a module of the directory in `auto_map` and transformers has no
    class of its own for it: config.json (`model_type` unknown to transformers, e.g. InternLM2's
    `internlm2`) -> "model"; tokenizer_config.json (`tokenizer_class` not in transformers) -> "tokenizer".
    Returns the parts, each with the reason, e.g. ["model (config.json auto_map, model_type 'internlm2')"].
    """
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    d = Path(model_dir)
    parts = []
    cfg_file, tok_file = d / "config.json", d / "tokenizer_config.json"
    if cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        if cfg.get("auto_map") and cfg.get("model_type") not in CONFIG_MAPPING_NAMES:
            parts.append(f"model (config.json auto_map, model_type {cfg.get('model_type')!r})")
    if tok_file.is_file():
        tok = json.loads(tok_file.read_text())
        cls = str(tok.get("tokenizer_class") or "")
        if (tok.get("auto_map") or {}).get("AutoTokenizer") and not hasattr(transformers, cls):
            parts.append(f"tokenizer (tokenizer_config.json auto_map, tokenizer_class {cls!r})")
    return parts


def check_remote_code(dirs: Sequence[str | Path | None], trust_remote_code: bool) -> None:
    """Refuse, with the fix named, to load directories whose own Python code would have to run.

    Without this, transformers asks on stdin (a batch job hangs or fails with a generic message) and a
    custom tokenizer may silently fall back to a different one. With model.trust_remote_code=true the code
    in the directory runs, exactly as the model's authors ship it: read it first.
    """
    if trust_remote_code:
        return
    found = [f"{d}: {part}" for d in dirs if d is not None for part in custom_code_parts(d)]
    if found:
        raise PermissionError(
            "these model files need their own Python code to load: "
            + "; ".join(found)
            + ". Set model.trust_remote_code=true to run it (read the *.py files in the directory first), "
            "or use a model transformers supports natively; InternLM2 (the released B2NER adapters): "
            "docs/inference.md#internlm2"
        )


def resolve_model_dirs(path: str, base_model: str = "") -> tuple[Path, Path | None]:
    """(base model dir, adapter dir or None) from model.path / model.base_model.

    model.path may be a full model, or a LoRA adapter whose base is model.base_model (or, when that is
    empty, the adapter's own `base_model_name_or_path` if it is a local directory). Either may be on
    object storage (s3://, gs://, ...): it is downloaded once per machine (`storage.localize`).
    """
    from b2ner_common.storage import is_uri, localize

    if path and is_uri(path):
        path = str(localize(path))
    if base_model and is_uri(base_model):
        base_model = str(localize(base_model))
    p = Path(path)
    if p.is_dir() and (p / "adapter_config.json").is_file():
        adapter = check_model_dir(p, adapter=True)
        base = base_model
        if not base:
            base = json.loads((p / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
            if not Path(base).is_dir():
                raise FileNotFoundError(
                    f"{p} is a LoRA adapter; its base model {base!r} is not a local directory: set model.base_model"
                )
        return check_model_dir(base), adapter
    if base_model:
        # base_model given + path that is not an adapter: a mistake worth naming.
        raise FileNotFoundError(
            f"model.base_model is set but {p} has no adapter_config.json (not a LoRA adapter)"
        )
    return check_model_dir(p), None


class LLMPredictor:
    """Prompt -> generate -> parse, in batches. `generate_fn(prompts) -> [(answer, hit_token_limit)]`."""

    def __init__(
        self,
        generate_fn: Callable[[list[str]], list[tuple[str, bool]]],
        *,
        name: str = "llm",
        lang: str = "auto",
        batch_size: int = 8,
        fit_prompt: Callable[[str, list[str], str], tuple[str, bool]] | None = None,
    ) -> None:
        self.name = name
        self.lang = lang
        self.batch_size = batch_size
        self._generate = generate_fn
        self._fit = fit_prompt

    def predict_detailed(
        self, texts: Sequence[str], labels: LabelSpec, langs: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Per text: entities with offsets, the raw answer, truncation and parse problems."""
        label_sets = per_text_label_sets(texts, labels)
        prompts, cut = [], []
        for i, text in enumerate(texts):
            lang = (langs[i] if langs else None) or (self.lang if self.lang != "auto" else detect_lang(text))
            names = list(label_sets[i])
            if self._fit is not None:
                prompt, was_cut = self._fit(text, names, lang)
            else:
                prompt, was_cut = format_prompt(text, names, lang), False
            prompts.append(prompt)
            cut.append(was_cut)
        answers: list[tuple[str, bool]] = []
        for s in range(0, len(prompts), self.batch_size):
            answers.extend(self._generate(prompts[s : s + self.batch_size]))
        out = []
        for text, names, (answer, hit_limit), was_cut in zip(texts, label_sets, answers, cut, strict=True):
            ents, problems = parse_answer(text, answer, list(names), truncated=hit_limit)
            out.append(Prediction(ents, raw_output=answer, truncated=hit_limit or was_cut, problems=problems))
        return out

    def predict(self, texts: Sequence[str], labels: LabelSpec) -> list[list[PredictedEntity]]:
        return [p.entities for p in self.predict_detailed(texts, labels)]


def _hf_generate_fn(model, tokenizer, *, max_new_tokens: int, device: str):
    import torch

    eos = tokenizer.eos_token_id
    tokenizer.padding_side = (
        "left"  # decoder-only: pad on the left so every prompt ends where generation starts
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    def generate(prompts: list[str]) -> list[tuple[str, bool]]:
        # Sort by length so a batch pads little; restore the order afterwards.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        enc = tokenizer(
            [prompts[i] for i in order], return_tensors="pt", padding=True, add_special_tokens=True
        )
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        res: list[tuple[str, bool]] = [("", False)] * len(prompts)
        for row, i in zip(new.tolist(), order, strict=True):
            hit_limit = eos not in row and len(row) >= max_new_tokens
            res[i] = (tokenizer.decode(row, skip_special_tokens=True), hit_limit)
        return res

    return generate


def _fit_prompt_fn(tokenizer, max_input_tokens: int):
    def fit(text: str, names: list[str], lang: str) -> tuple[str, bool]:
        prompt = format_prompt(text, names, lang)
        n = len(tokenizer(prompt)["input_ids"])
        if n <= max_input_tokens:
            return prompt, False
        # Shrink the text (never the instruction) until the prompt fits; chunking normally prevents this.
        keep = len(text)
        while keep > 0 and n > max_input_tokens:
            keep = int(keep * max_input_tokens / n * 0.95)
            prompt = format_prompt(text[:keep], names, lang)
            n = len(tokenizer(prompt)["input_ids"])
        return prompt, True

    return fit


def load_hf(
    base_dir: Path,
    adapter_dir: Path | None,
    *,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
):
    """(model, tokenizer) from local dirs; the adapter's own tokenizer wins when it ships one.

    trust_remote_code: run the Python code a directory ships (config/model/tokenizer classes named in its
    `auto_map`, e.g. InternLM2); without it such a directory is refused (`check_remote_code`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    tok_dir = (
        adapter_dir
        if adapter_dir and any((adapter_dir / f).is_file() for f in _TOKENIZER_FILES)
        else base_dir
    )
    check_remote_code([base_dir, tok_dir], trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(
        str(tok_dir), local_files_only=True, trust_remote_code=trust_remote_code
    )
    model = AutoModelForCausalLM.from_pretrained(
        str(base_dir), local_files_only=True, dtype=torch_dtype, trust_remote_code=trust_remote_code
    )
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir), local_files_only=True)
        model = model.merge_and_unload()  # merged weights generate faster and behave like a plain model
    model.to(device).eval()
    return model, tokenizer


def load_llm_tokenizer(model_cfg):
    """The tokenizer `load_llm_predictor` would use (the adapter's own when it ships one), alone: for
    pipelines whose generation runs elsewhere (Ray Data LLM's vLLM stage)."""
    from transformers import AutoTokenizer

    base_dir, adapter_dir = resolve_model_dirs(model_cfg.path, model_cfg.base_model)
    tok_dir = (
        adapter_dir
        if adapter_dir and any((adapter_dir / f).is_file() for f in _TOKENIZER_FILES)
        else base_dir
    )
    check_remote_code([tok_dir], model_cfg.trust_remote_code)
    return AutoTokenizer.from_pretrained(
        str(tok_dir), local_files_only=True, trust_remote_code=model_cfg.trust_remote_code
    )


def _vllm_generate_fn(base_dir: Path, adapter_dir: Path | None, cfg):
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as e:
        raise RuntimeError(
            "model.backend=vllm needs the `vllm` package on a GPU machine "
            "(pip install 'ray[llm]==2.60.0', which brings vllm; docs/inference.md#vllm); "
            "use model.backend=hf on CPU"
        ) from e
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("model.backend=vllm needs a CUDA GPU; none is visible (use model.backend=hf)")
    check_remote_code([base_dir], cfg.trust_remote_code)
    llm = vllm.LLM(
        model=str(base_dir),
        trust_remote_code=cfg.trust_remote_code,
        enable_lora=adapter_dir is not None,
        max_lora_rank=64,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
        tensor_parallel_size=cfg.tensor_parallel_size,
        max_model_len=cfg.max_input_tokens + cfg.max_new_tokens,
        dtype="auto" if cfg.dtype == "auto" else cfg.dtype,
    )
    params = vllm.SamplingParams(temperature=0.0, max_tokens=cfg.max_new_tokens)
    lora = LoRARequest("b2ner", 1, str(adapter_dir)) if adapter_dir is not None else None

    def generate(prompts: list[str]) -> list[tuple[str, bool]]:
        outs = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
        return [(o.outputs[0].text, o.outputs[0].finish_reason == "length") for o in outs]

    return generate, llm.get_tokenizer()


def load_llm_predictor(model_cfg) -> LLMPredictor:
    """Factory for `model.family: llm` (a ModelConfig): validates the dirs, loads the backend."""
    base_dir, adapter_dir = resolve_model_dirs(model_cfg.path, model_cfg.base_model)
    name = f"llm:{base_dir.name}" + (f"+{adapter_dir.name}" if adapter_dir else "")
    if model_cfg.backend == "vllm":
        gen, tokenizer = _vllm_generate_fn(base_dir, adapter_dir, model_cfg)
        # vLLM schedules its own batches: hand it everything at once.
        batch = 1 << 30
    else:
        model, tokenizer = load_hf(
            base_dir,
            adapter_dir,
            device=model_cfg.device,
            dtype=model_cfg.dtype,
            trust_remote_code=model_cfg.trust_remote_code,
        )
        gen = _hf_generate_fn(
            model, tokenizer, max_new_tokens=model_cfg.max_new_tokens, device=model_cfg.device
        )
        batch = model_cfg.batch_size
    return LLMPredictor(
        gen,
        name=name,
        lang=model_cfg.lang,
        batch_size=batch,
        fit_prompt=_fit_prompt_fn(tokenizer, model_cfg.max_input_tokens),
    )

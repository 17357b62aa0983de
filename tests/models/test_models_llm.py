"""LLM family on the tiny offline Llama: prompts, batching, LoRA loading, errors that name the fix."""

import json

import pytest

from b2ner_common.config import ModelConfig
from b2ner_common.models.base import load_predictor
from b2ner_common.models.llm.predictor import LLMPredictor, detect_lang, resolve_model_dirs
from b2ner_common.prompts import EN_TEMPLATE, ZH_TEMPLATE

TEXTS = [
    "Barack Obama visited Paris in June 2015 with the United Nations delegation.",
    "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
    "The Transformer model was trained on WMT data using PyTorch.",
]


def test_models_llm_detect_lang():
    assert detect_lang(TEXTS[1]) == "zh"
    assert detect_lang(TEXTS[0]) == "en"
    assert detect_lang("iPhone 15 在北京发布") == "zh"
    assert detect_lang("") == "en"


def test_models_llm_prompt_per_text_labels_language_and_parse():
    seen = []

    def fake_generate(prompts):
        seen.extend(prompts)
        answers = {0: " person: Barack Obama; location: Paris", 1: " 人名: 叶老桂", 2: " None"}
        return [(answers[len(seen) - len(prompts) + i], False) for i in range(len(prompts))]

    pred = LLMPredictor(fake_generate, batch_size=2)
    out = pred.predict_detailed(TEXTS, [["person", "location"], ["人名"], ["software"]])
    assert seen[0] == EN_TEMPLATE.format(labels_str="person, location", text=TEXTS[0])
    assert seen[1] == ZH_TEMPLATE.format(labels_str="人名", text=TEXTS[1])
    assert [(e.start, e.end, e.label) for e in out[0].entities] == [(0, 12, "person"), (21, 26, "location")]
    assert [(e.text, e.label) for e in out[1].entities] == [("叶老桂", "人名")]
    assert out[2].entities == [] and out[2].raw_output == " None"


def test_models_llm_tiny_model_batched_equals_one_by_one(tiny_llm_dir):
    cfg = ModelConfig(family="llm", path=str(tiny_llm_dir), max_new_tokens=12, batch_size=3)
    pred = load_predictor(cfg)
    labels = ["person", "location", "organization"]
    batched = pred.predict_detailed(TEXTS, labels)
    single = [pred.predict_detailed([t], labels)[0] for t in TEXTS]
    # Left padding must not change greedy answers.
    assert [p.raw_output for p in batched] == [p.raw_output for p in single]
    for text, p in zip(TEXTS, batched, strict=True):
        assert isinstance(p.raw_output, str)
        assert all(text[e.start : e.end] == e.text for e in p.entities)


def test_models_llm_long_prompt_is_cut_and_flagged(tiny_llm_dir):
    cfg = ModelConfig(family="llm", path=str(tiny_llm_dir), max_new_tokens=2, max_input_tokens=120)
    pred = load_predictor(cfg)
    [p] = pred.predict_detailed([" ".join([TEXTS[0]] * 20)], ["person"])
    assert p.truncated


def test_models_llm_lora_adapter_loads(tiny_llm_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a non-trivial adapter, so loading it changes the model
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    base_dir, adapter_dir = resolve_model_dirs(str(adapter), str(tiny_llm_dir))
    assert (base_dir, adapter_dir) == (tiny_llm_dir, adapter)
    pred = load_predictor(
        ModelConfig(family="llm", path=str(adapter), base_model=str(tiny_llm_dir), max_new_tokens=6)
    )
    assert pred.name.endswith("+adapter")
    out = pred.predict_detailed(TEXTS[:1], ["person"])
    assert isinstance(out[0].raw_output, str)
    # adapter_config names the base: found without model.base_model when it is a local dir.
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tiny_llm_dir)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    assert resolve_model_dirs(str(adapter))[0] == tiny_llm_dir


def test_models_llm_missing_files_are_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_predictor(ModelConfig(family="llm", path=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="model.path"):
        load_predictor(ModelConfig(family="llm", path=str(tmp_path / "nope")))
    adapter = tmp_path / "ad"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "meta/llama-hub-id"}))
    with pytest.raises(FileNotFoundError, match="adapter_model.safetensors"):
        load_predictor(ModelConfig(family="llm", path=str(adapter)))


def test_models_llm_vllm_needs_gpu_package(tiny_llm_dir):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm installed: covered on GPU machines")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="vllm"):
        load_predictor(ModelConfig(family="llm", path=str(tiny_llm_dir), backend="vllm"))


# ------------------------------------------------------------------ custom-code models (InternLM2-like)


def test_models_llm_custom_code_model_is_refused_without_trust_and_names_the_key(tiny_remote_code_llm_dir):
    from b2ner_common.models.llm.predictor import custom_code_parts

    parts = custom_code_parts(tiny_remote_code_llm_dir)
    assert [p.split(" ")[0] for p in parts] == ["model", "tokenizer"]
    assert "internlm2" in parts[0]
    with pytest.raises(PermissionError, match="model.trust_remote_code=true"):
        load_predictor(ModelConfig(family="llm", path=str(tiny_remote_code_llm_dir)))


def test_models_llm_custom_code_model_loads_and_generates_with_trust(tiny_remote_code_llm_dir):
    pred = load_predictor(
        ModelConfig(
            family="llm", path=str(tiny_remote_code_llm_dir), trust_remote_code=True, max_new_tokens=4
        )
    )
    out = pred.predict_detailed(TEXTS[:2], ["person", "location"])
    assert len(out) == 2 and all(isinstance(p.raw_output, str) for p in out)


def test_models_llm_custom_code_model_with_lora_adapter_on_wqkv(tiny_remote_code_llm_dir, tmp_path):
    from b2ner_common.models.llm.predictor import load_hf
    from b2ner_common.models.llm.sft_loop import load_base, save_adapter, wrap_lora

    with pytest.raises(PermissionError, match="model.trust_remote_code"):
        load_base(tiny_remote_code_llm_dir)
    model, tok = load_base(tiny_remote_code_llm_dir, trust_remote_code=True)
    assert type(tok).__name__ == "TinySPTokenizer"  # the directory's own SentencePiece tokenizer
    peft_model = wrap_lora(model, r=4, alpha=8)  # model_type internlm2 -> the fused wqkv projection
    assert "wqkv" in {n.split(".")[-4] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    save_adapter(peft_model, tmp_path / "adapter", tok)
    merged, tok2 = load_hf(tiny_remote_code_llm_dir, tmp_path / "adapter", trust_remote_code=True)
    assert type(tok2).__name__ == "TinySPTokenizer"
    with pytest.raises(PermissionError, match="tokenizer"):
        load_hf(tiny_remote_code_llm_dir, tmp_path / "adapter")


def test_models_llm_vllm_gets_trust_remote_code(tiny_remote_code_llm_dir, monkeypatch):
    """vLLM is not installed here: a stand-in module records what the predictor passes to vllm.LLM."""
    import sys
    import types

    import torch

    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def get_tokenizer(self):
            return None

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, lambda **kw: kw
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda *a: a
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    from b2ner_common.models.llm.predictor import _vllm_generate_fn

    cfg = ModelConfig(family="llm", path=str(tiny_remote_code_llm_dir), backend="vllm")
    with pytest.raises(PermissionError, match="model.trust_remote_code"):
        _vllm_generate_fn(tiny_remote_code_llm_dir, None, cfg)
    cfg = cfg.model_copy(update={"trust_remote_code": True})
    _vllm_generate_fn(tiny_remote_code_llm_dir, None, cfg)
    assert seen["trust_remote_code"] is True and seen["model"] == str(tiny_remote_code_llm_dir)


def test_models_llm_adapter_on_object_storage_is_downloaded_once(tiny_llm_dir, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from b2ner_common.storage import upload_dir

    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llm_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    uri = upload_dir(tmp_path / "adapter", (tmp_path / "bucket" / "run" / "adapter").as_uri())
    monkeypatch.setenv("B2NER_MODEL_CACHE", str(tmp_path / "cache"))
    base, adapter = resolve_model_dirs(uri, str(tiny_llm_dir))
    assert base == tiny_llm_dir and adapter.parent == tmp_path / "cache"
    pred = load_predictor(ModelConfig(family="llm", path=uri, base_model=str(tiny_llm_dir), max_new_tokens=3))
    assert isinstance(pred.predict_detailed(TEXTS[:1], ["person"])[0].raw_output, str)

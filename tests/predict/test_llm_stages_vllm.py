"""LLM prediction around an external generation stage (the Ray Data LLM / vLLM path), on CPU.

vLLM is not installed here: the two phases are checked against `predict_batch` with the same answers, and
the Ray shell must fail with the install command.
"""

from __future__ import annotations

import pandas as pd
import pytest

from b2ner_common.config import PipelineConfig
from b2ner_common.models.llm.predictor import LLMPredictor, _fit_prompt_fn
from b2ner_common.predict.batch import predict_batch
from b2ner_common.predict.llm_stages import document_predictions, document_prompts

DOCS = pd.DataFrame(
    {
        "doc_id": ["a", "b", "c", "d"],
        "text": [
            "Barack Obama visited Paris in June 2015.",
            "浙商银行企业信贷部叶老桂博士则从另一个角度进行了解读。",
            "Obama met the press. " * 12 + "Then Paris.",  # several chunks at max_chars 80
            None,  # no text: an error row, no prompt
        ],
        "labels": [None, ["人名", "组织机构"], None, None],
    }
)


def _answer(prompt: str) -> str:
    text = prompt.split("Text:")[-1] if "Text:" in prompt else prompt.split("文本:")[-1]
    if "Obama" in text:
        return " person: Obama; location: Paris" if "Paris" in text else " person: Obama"
    return " 人名: 叶老桂" if "叶老桂" in text else " None"


def test_llm_stages_prompts_then_answers_equal_predict_batch(tiny_llm_dir):
    from transformers import AutoTokenizer

    cfg = PipelineConfig.model_validate(
        {
            "model": {"family": "llm", "path": str(tiny_llm_dir), "max_new_tokens": 8},
            "predict": {
                "labels": ["person", "location"],
                "max_chars": 80,
                "overlap_chars": 10,
                "run_id": "r",
            },
        }
    )
    tok = AutoTokenizer.from_pretrained(tiny_llm_dir)
    direct = predict_batch(
        DOCS,
        LLMPredictor(
            lambda ps: [(_answer(p), False) for p in ps],
            name="m",
            fit_prompt=_fit_prompt_fn(tok, cfg.model.max_input_tokens),
        ),
        run_id="r",
        labels=cfg.predict.labels,
        cfg=cfg,
    )
    prompts = document_prompts(DOCS, cfg, tok, "m")
    assert (prompts["doc_id"] == "c").sum() > 1  # chunked: one prompt per chunk
    assert prompts.loc[prompts["doc_id"] == "d", "prompt_index"].tolist() == [-1]
    # The engine stage: one answer per prompt, in any row order.
    answered = prompts.assign(
        generated_text=[
            _answer(p) if k >= 0 else ""
            for p, k in zip(prompts["prompt"], prompts["prompt_index"], strict=True)
        ],
        num_generated_tokens=3,
    ).sample(frac=1.0, random_state=0)
    two_phase = document_predictions(answered, cfg, tok, "m", max_new_tokens=8)
    key = ["doc_id"]
    pd.testing.assert_frame_equal(
        two_phase.sort_values(key).reset_index(drop=True), direct.sort_values(key).reset_index(drop=True)
    )
    assert set(direct["status"]) >= {"ok", "error: no text"}


def test_llm_stages_ray_vllm_path_names_the_install_command(tiny_llm_dir):
    pytest.importorskip("ray")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm installed: the GPU path is exercised on GPU machines")
    except ImportError:
        pass
    from ray_train.predict import vllm_processor

    cfg = PipelineConfig.model_validate(
        {
            "model": {"family": "llm", "path": str(tiny_llm_dir), "backend": "vllm"},
            "predict": {"engine": "ray"},
        }
    )
    with pytest.raises(RuntimeError, match=r"pip install 'ray\[llm\]==2\.60\.0'"):
        vllm_processor(cfg)

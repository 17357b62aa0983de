"""LLM prediction split around an external generation stage (Ray Data LLM's vLLM processor).

`predict_batch` runs prompt -> generate -> parse in one call. When generation runs in another stage
(vLLM engine actors with tensor parallelism, fed by Ray Data), the same code runs twice around it:

1. `document_prompts`: per document, the exact prompts `predict_batch` would send (chunking, label sets,
   language, prompts cut to `model.max_input_tokens`), recorded by a generate function that answers "".
2. the engine answers every prompt (one row per prompt: `doc_id`, `prompt_index`, `prompt`).
3. `document_predictions`: per document, `predict_batch` again with a generate function that replays the
   engine's answers in prompt order: the same chunk merging, parsing and status as every other engine.

Both phases are deterministic for a config, so a document's prompts are identical in 1 and 3.
Plain pandas in and out; no engine import here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from b2ner_common.config import PipelineConfig
from b2ner_common.models.llm.predictor import LLMPredictor, _fit_prompt_fn
from b2ner_common.predict.batch import predict_batch

DOC_COLUMNS = ("doc_id", "text", "labels", "lang")


def _predictor(cfg: PipelineConfig, tokenizer, generate: Callable, name: str) -> LLMPredictor:
    return LLMPredictor(
        generate,
        name=name,
        lang=cfg.model.lang,
        batch_size=1 << 30,  # one call per document: the replay order is the prompt order
        fit_prompt=_fit_prompt_fn(tokenizer, cfg.model.max_input_tokens) if tokenizer is not None else None,
    )


def document_prompts(batch: pd.DataFrame, cfg: PipelineConfig, tokenizer, name: str) -> pd.DataFrame:
    """One row per prompt (doc columns + prompt_index, prompt); documents that need no generation
    (no text, no labels) get one row with prompt_index -1 and an empty prompt."""
    out = []
    for _, row in batch.iterrows():
        doc = pd.DataFrame([row])
        prompts: list[str] = []

        def record(ps: list[str], prompts: list[str] = prompts) -> list[tuple[str, bool]]:
            prompts.extend(ps)
            return [("", False)] * len(ps)

        predict_batch(
            doc,
            _predictor(cfg, tokenizer, record, name),
            run_id=cfg.predict.run_id,
            labels=cfg.predict.labels,
            cfg=cfg,
        )
        base = {c: row[c] for c in DOC_COLUMNS if c in batch.columns}
        if not prompts:
            out.append({**base, "prompt_index": -1, "prompt": ""})
        out.extend({**base, "prompt_index": k, "prompt": p} for k, p in enumerate(prompts))
    return pd.DataFrame(out)


def document_predictions(
    group: pd.DataFrame, cfg: PipelineConfig, tokenizer, name: str, *, max_new_tokens: int
) -> pd.DataFrame:
    """PREDICTIONS rows for the documents in `group` (their prompt rows with `generated_text` and
    `num_generated_tokens`), replaying the answers in prompt order."""
    rows = []
    for _, doc_rows in group.groupby("doc_id", sort=False):
        doc_rows = doc_rows.sort_values("prompt_index")
        answers: list[tuple[str, bool]] = [
            (str(t or ""), int(n or 0) >= max_new_tokens)
            for t, n, k in zip(
                doc_rows.get("generated_text", [""] * len(doc_rows)),
                doc_rows.get("num_generated_tokens", [0] * len(doc_rows)),
                doc_rows["prompt_index"],
                strict=True,
            )
            if k >= 0
        ]
        it = iter(answers)

        def replay(ps: Sequence[str], it=it) -> list[tuple[str, bool]]:
            return [next(it) for _ in ps]

        doc = doc_rows.iloc[:1][[c for c in DOC_COLUMNS if c in doc_rows.columns]]
        rows.append(
            predict_batch(
                doc,
                _predictor(cfg, tokenizer, replay, name),
                run_id=cfg.predict.run_id,
                labels=cfg.predict.labels,
                cfg=cfg,
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

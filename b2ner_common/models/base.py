"""The predictor interface every model family implements.

`predict(texts, labels)` returns, per text, entities with character offsets into that text (end exclusive),
the label, the entity text and a score where the model has one. `labels` is either one label set for the
whole batch or one per text; a label set is a list of names or a {name: definition} mapping.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from b2ner_common.schema import PredictedEntity, Prediction

LabelSet = Sequence[str] | Mapping[str, str]
LabelSpec = LabelSet | Sequence[LabelSet]


@runtime_checkable
class Predictor(Protocol):
    name: str

    def predict(self, texts: Sequence[str], labels: LabelSpec) -> list[list[PredictedEntity]]: ...


def per_text_label_sets(texts: Sequence[str], labels: LabelSpec) -> list[dict[str, str]]:
    """Normalize a LabelSpec to one {name: definition} dict per text (definition "" when not given)."""

    def one(ls: LabelSet) -> dict[str, str]:
        if isinstance(ls, Mapping):
            return {str(k): str(v or "") for k, v in ls.items()}
        return {str(k): "" for k in ls}

    if isinstance(labels, Mapping) or (len(labels) > 0 and all(isinstance(x, str) for x in labels)):
        shared = one(labels)  # type: ignore[arg-type]
        return [shared for _ in texts]
    if len(labels) == 0:
        return [{} for _ in texts]
    if len(labels) != len(texts):
        raise ValueError(
            f"got {len(labels)} label sets for {len(texts)} texts; give one set, or one per text"
        )
    return [one(ls) for ls in labels]  # type: ignore[arg-type]


def predict_detailed(
    predictor: Predictor, texts: Sequence[str], labels: LabelSpec, langs: Sequence[str | None] | None = None
) -> list[Prediction]:
    """`predictor.predict_detailed` when the family has it (raw output, truncation), else wraps `predict`.

    langs (optional, one per text) reaches families whose predict_detailed takes a `langs` argument.
    """
    fn = getattr(predictor, "predict_detailed", None)
    if fn is not None:
        if langs is not None and "langs" in inspect.signature(fn).parameters:
            return list(fn(texts, labels, langs=langs))
        return list(fn(texts, labels))
    return [Prediction(list(ents)) for ents in predictor.predict(texts, labels)]


# The one table of model families for prediction: name -> "module:factory" (a factory takes a ModelConfig
# and returns a Predictor). Core, because every engine loads predictors inside its workers; the trainers
# of the families are in b2ner_cli/stages.py.
FAMILIES: dict[str, str] = {
    "llm": "b2ner_common.models.llm.predictor:load_llm_predictor",
    "span-encoder": "b2ner_common.models.span_encoder.model:load_span_encoder_predictor",
    "lexicon": "b2ner_common.models.lexicon:load_lexicon_predictor",
}


def register_family(name: str, target: str | Callable) -> None:
    """Register a model family by short name (target: "module:function" or a callable)."""
    FAMILIES[name] = target  # type: ignore[assignment]


def load_predictor(model_cfg) -> Predictor:
    """Instantiate the predictor for `model_cfg.family` (a ModelConfig)."""
    try:
        target = FAMILIES[model_cfg.family]
    except KeyError:
        raise ValueError(f"unknown model family {model_cfg.family!r}; known: {sorted(FAMILIES)}") from None
    if callable(target):
        return target(model_cfg)
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)(model_cfg)

"""Model families behind one predictor interface, chosen by a short name (`model.family`)."""

from b2ner_common.models.base import LabelSpec, PredictedEntity, Predictor, load_predictor, register_family

__all__ = ["LabelSpec", "PredictedEntity", "Predictor", "load_predictor", "register_family"]

"""Ray Train + DeepSpeed fine-tuning and Ray Data batch inference: thin shells over b2ner_common."""

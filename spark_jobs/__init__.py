"""Thin Spark entry points over b2ner_common: open tables, call core functions per partition, write tables."""

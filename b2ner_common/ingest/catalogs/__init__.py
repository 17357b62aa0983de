"""Catalog data files shipped with the package (see b2ner_common.ingest.catalog)."""

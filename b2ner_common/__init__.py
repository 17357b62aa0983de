"""b2ner core library: plain functions over records and Arrow/pandas batches.

Nothing here imports pyspark, ray or deepspeed at module import time (tests/test_layers.py pins it).
"""

__version__ = "0.1.0"

"""The sample-data generator: deterministic landing files for all six sources, planted effects
and the bad-input catalogue (``cs-warehouse generate``)."""

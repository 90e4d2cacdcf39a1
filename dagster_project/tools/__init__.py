"""Tools around the pipeline, not part of it."""

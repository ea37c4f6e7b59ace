"""Data: scene records, on-disk formats, the synthetic world, and torch datasets."""

"""Every read and write: data sources, the embedding store, score and selection files."""

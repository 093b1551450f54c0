"""Pure functions, array in, Scores out. Each module documents its signal's direction (higher = harder)."""

from selfprune.metrics.prototypes import DEFAULT_K, class_prototypes, prototypes, random_scores

__all__ = ["DEFAULT_K", "prototypes", "class_prototypes", "random_scores"]

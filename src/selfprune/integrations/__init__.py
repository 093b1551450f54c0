"""Thin adapters from kept ids back to training: PyTorch ``Dataset``/``Sampler``, Lightning, HF ``datasets``."""

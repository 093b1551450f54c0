"""Thin adapters from kept ids back to training: PyTorch ``Dataset``/``Sampler`` and Lightning."""

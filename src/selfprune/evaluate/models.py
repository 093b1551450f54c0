"""Small PyTorch classifiers used as fixed recipes: ``linear``, ``mlp`` and ``small-cnn``.

``build_model(name, input_shape, num_classes, seed)`` returns an initialised ``nn.Module`` whose
weights depend only on ``seed``. Inputs are float32: images (B, C, H, W), features (B, D).
"""

from __future__ import annotations

from selfprune.errors import InvalidInputError, require

MODELS = ("linear", "mlp", "small-cnn")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, *, seed: int = 0):
    """A freshly initialised classifier; ``input_shape`` excludes the batch dimension."""
    torch = require("torch", "torch")
    nn = torch.nn
    if name not in MODELS:
        raise InvalidInputError(f"build_model: unknown model {name!r}; choose from {MODELS}")
    if num_classes < 2:
        raise InvalidInputError(f"build_model: num_classes must be >= 2, got {num_classes}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        flat = 1
        for s in input_shape:
            flat *= int(s)
        if name == "linear":
            model = nn.Sequential(nn.Flatten(), nn.Linear(flat, num_classes))
        elif name == "mlp":
            model = nn.Sequential(nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, num_classes))
        else:
            if len(input_shape) != 3:
                raise InvalidInputError(f"build_model: small-cnn needs image inputs (C, H, W), got shape {input_shape}")
            c, h, w = input_shape
            model = nn.Sequential(
                nn.Conv2d(c, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(64 * (h // 4) * (w // 4), 128),
                nn.ReLU(),
                nn.Linear(128, num_classes),
            )
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def as_model_input(x):
    """uint8 images (N, H, W[, C]) -> float32 (N, C, H, W) in [0, 1]; features -> float32 (N, D)."""
    import numpy as np

    x = np.asarray(x)
    if x.ndim == 2:
        return np.ascontiguousarray(x, dtype=np.float32)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(np.float32) / scale
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = np.transpose(x, (0, 3, 1, 2))
    return np.ascontiguousarray(x)

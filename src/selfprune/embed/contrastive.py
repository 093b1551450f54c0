"""``contrastive``: a small SimCLR encoder trained on the user's own unlabelled images (no labels).

No self-supervised image encoder ships usable weights offline, and a user's images often look
nothing like ImageNet, so this encoder learns from the data itself: two random augmentations of
each image (random resized crop, horizontal flip, brightness/contrast jitter, Gaussian noise, all
done in torch on uint8 batches) are pulled together and pushed away from the other images of the
batch by the NT-Xent loss (Chen et al. 2020). The backbone is three 3x3 conv-BN-ReLU-maxpool
blocks (widths ``width, 2*width, 4*width``), a 1x1 conv to ``dim`` and global average pooling; ``encode`` returns those
pooled ``dim`` features, before the projection head (as SimCLR recommends for downstream use).

Training checkpoints after every epoch (weights, optimiser, RNG state, epoch; written atomically)
and a new ``fit`` with the same settings and sample resumes from the last checkpoint, so a killed
run finishes with exactly the weights of an uninterrupted one. Everything random comes from one
``torch.Generator`` seeded by ``seed``: same settings, sample, seed and thread count give the same
weights bit for bit on CPU. ``epochs=0`` gives the untrained (randomly initialised) network, the
null control of :mod:`selfprune.evaluate.audit`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, check_int, seed_int
from selfprune.errors import InvalidInputError, StoreError, require

CHECKPOINT = "checkpoint.pt"
STATE = "contrastive.pt"


def _cache_root() -> Path:
    return Path(os.environ.get("SELFPRUNE_CACHE", Path.home() / ".cache" / "selfprune"))


def _build(torch, in_ch: int, width: int, dim: int, proj_dim: int):
    """Backbone (conv blocks + global average pool -> ``dim``) and the 2-layer projection head."""
    nn = torch.nn

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
        return [*layers, nn.MaxPool2d(2)] if pool else layers

    backbone = nn.Sequential(
        *block(in_ch, width, True),
        *block(width, 2 * width, True),
        *block(2 * width, 4 * width, True),
        nn.Conv2d(4 * width, dim, 1, bias=False),
        nn.BatchNorm2d(dim),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, proj_dim))
    return backbone, head


def nt_xent(z1, z2, temperature: float):
    """NT-Xent loss of two (B, P) projections: each view must pick its partner among 2B - 1 others."""
    import torch

    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    b = len(z1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
    return torch.nn.functional.cross_entropy(sim, target)


def augment(x, gen, *, min_scale: float = 0.35, noise: float = 0.05):
    """Two-view SimCLR augmentation of a float (B, C, H, W) batch in [0, 1] -> same shape.

    Random resized crop (area ``min_scale``..1, aspect 3/4..4/3, random position), horizontal flip
    (p = 0.5), brightness/contrast jitter (+-0.25 / x0.6..1.4), Gaussian noise. All draws come from
    ``gen``, so a seeded generator gives the same views every time.
    """
    import torch

    b = len(x)
    u = torch.rand(b, 8, generator=gen)
    area = min_scale + (1.0 - min_scale) * u[:, 0]
    log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[:, 1]
    ratio = torch.exp(log_r)
    sw = torch.sqrt(area * ratio).clamp(max=1.0)
    sh = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (1.0 - sw) * (2 * u[:, 2] - 1)
    ty = (1.0 - sh) * (2 * u[:, 3] - 1)
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = sw * flip
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = sh
    theta[:, 1, 2] = ty
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    contrast = (0.6 + 0.8 * u[:, 5]).view(b, 1, 1, 1)
    bright = (0.5 * u[:, 6] - 0.25).view(b, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean + bright
    out = out + noise * torch.randn(out.shape, generator=gen)
    return out.clamp_(0.0, 1.0)


@dataclass
class ContrastiveEncoder:
    """SimCLR on the data itself. ``fit`` trains (checkpointed, resumable), ``encode`` -> (B, dim).

    Settings: ``dim`` pooled feature size (the embedding), ``width`` first conv width,
    ``proj_dim`` projection-head output, ``epochs``, ``batch_size``, ``temperature`` of NT-Xent,
    ``lr`` (Adam, cosine decay to 0 over all steps), ``weight_decay``, ``image_size`` (inputs are
    resized to it), ``seed`` (used when ``fit`` is not given one), ``checkpoint_dir`` (None: a
    folder under ``$SELFPRUNE_CACHE`` keyed by settings + sample; ``""`` disables checkpoints),
    ``threads`` (torch CPU threads; None leaves torch's setting).
    The defaults train on Fashion-MNIST's 60,000 images in about 10 minutes on 2 cores.
    """

    dim: int = 128
    width: int = 16
    proj_dim: int = 64
    epochs: int = 8
    batch_size: int = 256
    temperature: float = 0.2
    lr: float = 2e-3
    weight_decay: float = 1e-5
    image_size: int = 28
    seed: int = 0
    checkpoint_dir: str | os.PathLike | None = None
    threads: int | None = None
    name: str = "contrastive"
    modality: str = "image"
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    _backbone: Any = field(default=None, repr=False)
    _head: Any = field(default=None, repr=False)
    _norm: tuple[float, float] = field(default=(0.0, 1.0), repr=False)
    _in_ch: int = field(default=1, repr=False)

    def __post_init__(self) -> None:
        caller = "contrastive encoder"
        check_int(self.dim, caller=caller, name="dim", low=2)
        check_int(self.width, caller=caller, name="width", low=1)
        check_int(self.proj_dim, caller=caller, name="proj_dim", low=2)
        check_int(self.epochs, caller=caller, name="epochs", low=0)
        check_int(self.batch_size, caller=caller, name="batch_size", low=2)
        check_int(self.image_size, caller=caller, name="image_size", low=8, high=512)
        check_int(self.seed, caller=caller, name="seed", low=0)
        if self.threads is not None:
            check_int(self.threads, caller=caller, name="threads", low=1)
        for name in ("temperature", "lr"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not (0 < float(v) < math.inf):
                raise InvalidInputError(f"{caller}: {name} must be a positive number, got {v!r}")
        if not isinstance(self.weight_decay, int | float) or not (0 <= float(self.weight_decay) < math.inf):
            raise InvalidInputError(f"{caller}: weight_decay must be >= 0, got {self.weight_decay!r}")

    # ------------------------------------------------------------------ settings

    def params(self) -> dict[str, Any]:
        """Settings that determine the weights (recorded in the store manifest)."""
        return {
            "dim": self.dim, "width": self.width, "proj_dim": self.proj_dim, "epochs": self.epochs,
            "batch_size": self.batch_size, "temperature": float(self.temperature), "lr": float(self.lr),
            "weight_decay": float(self.weight_decay), "image_size": self.image_size,
        }  # fmt: skip

    # ------------------------------------------------------------------ data

    def _to_tensor(self, batch, torch):
        """uint8 (B, H, W[, C]) -> float (B, C, S, S) in [0, 1] at ``image_size``."""
        x = np.asarray(batch)
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = np.transpose(x, (0, 3, 1, 2))
        elif x.ndim != 4:
            raise InvalidInputError(
                f"contrastive encoder: images must be (B, H, W) or (B, H, W, C), got shape {x.shape}"
            )
        if len(x) == 0:
            raise InvalidInputError("contrastive encoder: empty batch")
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) / scale
        if t.shape[-1] != self.image_size or t.shape[-2] != self.image_size:
            t = torch.nn.functional.interpolate(
                t, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return t

    # ------------------------------------------------------------------ training

    def _init(self, torch, in_ch: int, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._backbone, self._head = _build(torch, in_ch, self.width, self.dim, self.proj_dim)
        self._in_ch = in_ch

    def _checkpoint_folder(self, key: str) -> Path | None:
        if self.checkpoint_dir == "":
            return None
        if self.checkpoint_dir is None:
            return _cache_root() / "contrastive" / key
        return Path(self.checkpoint_dir)

    def fit(
        self,
        sample,
        *,
        seed: SeedLike | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> ContrastiveEncoder:
        """Train on ``sample`` (uint8 images, no labels); resumes from a matching checkpoint.

        ``progress(epoch, epochs, mean_loss)`` is called after each epoch's checkpoint is written.
        Raises StoreError if the checkpoint folder holds a run with other settings or data.
        """
        torch = require("torch", "torch")
        seed = self.seed if seed is None else seed_int(seed)
        check_int(seed, caller="contrastive encoder", name="seed", low=0)
        x = self._to_tensor(sample, torch)
        n = len(x)
        if n < 2:
            raise InvalidInputError(f"contrastive encoder: fit needs at least 2 images, got {n}")
        mean, std = float(x.mean()), float(x.std())
        self._norm = (mean, std if std > 0 else 1.0)
        config = {**self.params(), "seed": seed, "in_ch": int(x.shape[1]), "n": n,
                  "sample_sha": _fingerprint(sample)}  # fmt: skip
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        folder = self._checkpoint_folder(key) if self.epochs > 0 else None
        self._init(torch, int(x.shape[1]), seed)
        params = [*self._backbone.parameters(), *self._head.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        start, self.history = 0, []
        if folder is not None and (folder / CHECKPOINT).is_file():
            ck = _load(torch, folder / CHECKPOINT)
            if ck.get("config") != config:
                raise StoreError(
                    f"contrastive encoder: {folder} holds a checkpoint of a different run "
                    "(other settings, seed or images); choose another checkpoint_dir or delete it"
                )
            self._backbone.load_state_dict(ck["backbone"])
            self._head.load_state_dict(ck["head"])
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            start, self.history = int(ck["epoch"]), list(ck["history"])
        steps_per_epoch = -(-n // self.batch_size)
        total = max(1, self.epochs * steps_per_epoch)
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for epoch in range(start, self.epochs):
                self._backbone.train()
                self._head.train()
                perm = torch.randperm(n, generator=gen)
                losses = []
                for i, lo in enumerate(range(0, n, self.batch_size)):
                    idx = perm[lo : lo + self.batch_size]
                    if len(idx) < 2:
                        continue
                    step = epoch * steps_per_epoch + i
                    for g in opt.param_groups:
                        g["lr"] = self.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
                    xb = x[idx]
                    with torch.no_grad():
                        v1 = (augment(xb, gen) - self._norm[0]) / self._norm[1]
                        v2 = (augment(xb, gen) - self._norm[0]) / self._norm[1]
                    z1 = self._head(self._backbone(v1))
                    z2 = self._head(self._backbone(v2))
                    loss = nt_xent(z1, z2, self.temperature)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                self.history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else float("nan")})
                if folder is not None:
                    _save_atomic(torch, folder / CHECKPOINT, {
                        "config": config, "epoch": epoch + 1, "history": self.history,
                        "backbone": self._backbone.state_dict(), "head": self._head.state_dict(),
                        "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    })  # fmt: skip
                if progress is not None:
                    progress(epoch + 1, self.epochs, self.history[-1]["loss"])
        finally:
            torch.set_num_threads(old_threads)
        self._backbone.eval()
        self._head.eval()
        return self

    # ------------------------------------------------------------------ encoding

    def encode(self, batch) -> np.ndarray:
        """Pooled backbone features (B, dim) float32 of uint8 images (eval mode, no augmentation)."""
        if self._backbone is None:
            raise InvalidInputError("contrastive encoder: call fit() (or load_state()) before encode()")
        import torch

        x = self._to_tensor(batch, torch)
        if x.shape[1] != self._in_ch:
            raise InvalidInputError(f"contrastive encoder: batch has {x.shape[1]} channel(s), trained on {self._in_ch}")
        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._backbone.eval()
            with torch.inference_mode():
                out = self._backbone((x - self._norm[0]) / self._norm[1])
        finally:
            torch.set_num_threads(old)
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        """Weights and input normalisation: everything ``encode`` needs."""
        if self._backbone is None:
            raise InvalidInputError("contrastive encoder: nothing to save; call fit() first")
        return {"params": self.params(), "in_ch": self._in_ch, "norm": list(self._norm),
                "backbone": self._backbone.state_dict(), "head": self._head.state_dict(),
                "history": self.history}  # fmt: skip

    def save_state(self, folder: str | os.PathLike) -> None:
        """Write the trained weights into ``folder`` (atomically) for :meth:`load_state`."""
        torch = require("torch", "torch")
        _save_atomic(torch, Path(folder) / STATE, self.state_dict())

    def load_state(self, folder: str | os.PathLike) -> ContrastiveEncoder:
        """Load weights saved by :meth:`save_state`; the architecture settings must match."""
        torch = require("torch", "torch")
        path = Path(folder) / STATE
        st = _load(torch, path)
        arch = ("dim", "width", "proj_dim", "image_size")
        saved = {a: (st.get("params") or {}).get(a) for a in arch}
        if saved != {a: getattr(self, a) for a in arch}:
            raise StoreError(
                f"{path} holds a network with other settings ({saved}); this encoder has "
                f"{ {a: getattr(self, a) for a in arch} }"
            )
        self._init(torch, int(st["in_ch"]), 0)
        try:
            self._backbone.load_state_dict(st["backbone"])
            self._head.load_state_dict(st["head"])
        except (RuntimeError, KeyError) as exc:
            raise StoreError(f"{path} does not hold weights of this architecture ({exc})") from exc
        self._norm = (float(st["norm"][0]), float(st["norm"][1]))
        self.history = list(st.get("history", []))
        self._backbone.eval()
        self._head.eval()
        return self


def _fingerprint(sample) -> str:
    arr = np.ascontiguousarray(np.asarray(sample))
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def _save_atomic(torch, path: Path, obj: dict) -> None:
    from selfprune.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _load(torch, path: Path) -> dict:
    if not path.is_file():
        raise StoreError(f"{path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a truncated or foreign file
        raise StoreError(f"{path} is not a readable checkpoint ({exc})") from exc


def untrained_embeddings(images, *, seed: SeedLike = 0, dim: int = 128, batch_size: int = 1024) -> np.ndarray:
    """Embeddings of ``images`` by the randomly initialised (untrained) contrastive backbone.

    The audit's null control: what an encoder that learned nothing produces. (N, dim) float32.
    """
    enc = ContrastiveEncoder(dim=dim, epochs=0, checkpoint_dir="", seed=seed_int(seed))
    x = np.asarray(images)
    enc.fit(x[: min(len(x), 4096)], seed=seed_int(seed))
    return np.concatenate([enc.encode(x[lo : lo + batch_size]) for lo in range(0, len(x), batch_size)])

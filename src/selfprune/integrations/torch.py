"""From kept ids back to a PyTorch training loop.

A selection is a sorted array of kept ids; a map-style dataset is indexed by position. The two meet
through the dataset's ids (``ids[i]`` is the id of ``dataset[i]``; by default ``ids = arange(len)``),
mapped to positions once, vectorised (:func:`kept_indices`). Then either wrap the dataset
(:class:`KeptSubset`, a ``torch.utils.data.Subset`` in the kept examples' dataset order) or keep the
dataset and draw from the kept positions (:class:`KeptSampler`, seeded, reshuffled per epoch with
``set_epoch`` as ``DistributedSampler`` is). :func:`kept_datamodule` builds a Lightning
``LightningDataModule`` whose training loader sees only the kept examples.

```python
from torch.utils.data import DataLoader
import selfprune as sp
from selfprune.integrations.torch import KeptSubset, KeptSampler

kept = sp.io.tables.read_ids("runs/fm/kept.parquet")
loader = DataLoader(KeptSubset(train_set, kept), batch_size=128, shuffle=True)
# or, keeping the dataset as it is:
loader = DataLoader(train_set, batch_size=128, sampler=KeptSampler(train_set, kept, seed=0))
```
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import numpy as np

from selfprune._checks import check_ids, kept_indices
from selfprune.errors import InvalidInputError

try:
    import torch
    from torch.utils.data import Sampler, Subset
except ImportError as exc:  # pragma: no cover - torch is an optional extra
    raise ImportError("selfprune.integrations.torch needs PyTorch: pip install 'selfprune[torch]'") from exc


def _length(dataset: Any, caller: str) -> int:
    if not isinstance(dataset, Sized):
        raise InvalidInputError(f"{caller}: the dataset must be map-style (sized), got {type(dataset).__name__}")
    return len(dataset)


def _positions(dataset: Any, kept_ids, ids, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """(the dataset's ids, the kept positions in it)."""
    ref = check_ids(ids, _length(dataset, caller), caller=caller)
    return ref, kept_indices(ref, kept_ids, caller=caller)


class KeptSubset(Subset):
    """The kept examples of a map-style ``dataset``, in the dataset's order.

    ``ids`` are the dataset's ids (``ids[i]`` belongs to ``dataset[i]``; default ``arange(len)``).
    ``indices`` holds the positions, ``kept_ids`` the ids in the same order.
    """

    def __init__(self, dataset: Any, kept_ids, *, ids=None) -> None:
        ref, pos = _positions(dataset, kept_ids, ids, "KeptSubset")
        super().__init__(dataset, pos.tolist())
        self.kept_ids = ref[pos]


class KeptSampler(Sampler[int]):
    """Draws the kept positions of ``dataset`` once per epoch, in a seeded random order.

    The order of epoch ``e`` is a permutation drawn from ``seed + e`` alone, never from global random
    state. Each pass moves to the next epoch by itself; ``set_epoch`` (as for ``DistributedSampler``)
    sets it explicitly. ``shuffle=False`` yields the kept positions in dataset order.

    With ``num_replicas`` > 1 each ``rank`` gets every ``num_replicas``-th position of the same
    permutation, as ``DistributedSampler`` does: the kept positions are padded (repeating the first
    ones) to a multiple of ``num_replicas`` so that every rank draws ``ceil(kept / num_replicas)``,
    or, with ``drop_last``, the tail is dropped so that no position is drawn twice.
    """

    def __init__(self, dataset: Any, kept_ids, *, ids=None, shuffle: bool = True, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0, drop_last: bool = False) -> None:  # fmt: skip
        for name, value, low in (("seed", seed, 0), ("num_replicas", num_replicas, 1), ("rank", rank, 0)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InvalidInputError(f"KeptSampler: {name} must be an int >= {low}, got {value!r}")
        if rank >= num_replicas:
            raise InvalidInputError(f"KeptSampler: rank {rank} must be below num_replicas {num_replicas}")
        self.indices = _positions(dataset, kept_ids, ids, "KeptSampler")[1]
        if drop_last and len(self.indices) < num_replicas:
            raise InvalidInputError(f"KeptSampler: {len(self.indices)} kept examples for {num_replicas} replicas")
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), 0
        self.num_replicas, self.rank, self.drop_last = int(num_replicas), int(rank), drop_last

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of ``epoch`` on the next pass (the same order on every rank)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n, r = len(self.indices), self.num_replicas
        return n // r if self.drop_last else -(-n // r)

    def __iter__(self) -> Iterator[int]:
        order = self.indices
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = order[torch.randperm(len(order), generator=g).numpy()]
            self.epoch += 1
        total = len(self) * self.num_replicas
        order = order[:total] if self.drop_last else np.resize(order, total)  # resize repeats from the start
        return iter(order[self.rank :: self.num_replicas].tolist())


def kept_datamodule(train: Any, kept_ids, *, ids=None, val: Any = None, test: Any = None, batch_size: int = 128,
                    num_workers: int = 0, seed: int = 0):  # fmt: skip
    """A Lightning ``LightningDataModule``: training on the kept examples of ``train``, the rest as given.

    The training loader draws through :class:`KeptSampler` (seeded, reshuffled every epoch, its epoch
    saved in Lightning checkpoints so that a resumed fit sees the orders an uninterrupted one would);
    validation and test loaders, when given, run over their whole datasets in order.
    """
    try:
        import lightning as L
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError("kept_datamodule needs Lightning: pip install 'selfprune[lightning]'") from exc
    from torch.utils.data import DataLoader

    sampler = KeptSampler(train, kept_ids, ids=ids, seed=seed)

    class KeptDataModule(L.LightningDataModule):
        """Training on the kept examples (``self.sampler``); validation and test on everything given."""

        def __init__(self) -> None:
            super().__init__()
            self.sampler = sampler

        def train_dataloader(self):
            return DataLoader(train, batch_size=batch_size, sampler=sampler, num_workers=num_workers)

        def val_dataloader(self):
            return DataLoader(val, batch_size=batch_size, num_workers=num_workers) if val is not None else []

        def test_dataloader(self):
            return DataLoader(test, batch_size=batch_size, num_workers=num_workers) if test is not None else []

        def state_dict(self) -> dict[str, int]:  # saved in Lightning checkpoints
            return {"sampler_epoch": sampler.epoch}

        def load_state_dict(self, state: dict[str, int]) -> None:
            sampler.set_epoch(state["sampler_epoch"])

    return KeptDataModule()

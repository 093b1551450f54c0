"""Kept ids back into training: the subset, the sampler and the Lightning module see only kept rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from selfprune.errors import InvalidInputError
from selfprune.integrations.torch import KeptSampler, KeptSubset, kept_datamodule, kept_indices


class Indexed(Dataset):
    """Returns (position, features, label): a loader's batches say which rows they came from."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return i, self.x[i], self.y[i]


def poisoned(n: int = 400, kept_share: float = 0.5, seed: int = 0):
    """Two separable blobs; every row that is not kept has NaN features, so any leak shows as NaN."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)) + 3.0 * y[:, None]
    ids = rng.permutation(10 * n)[:n]  # ids are not positions
    kept_pos = np.sort(rng.choice(n, int(kept_share * n), replace=False))
    x[np.setdiff1d(np.arange(n), kept_pos)] = np.nan
    ds = Indexed(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    return ds, ids, ids[kept_pos], kept_pos


def test_kept_indices_maps_ids_to_positions_whatever_their_order():
    ids = np.array(["c", "a", "d", "b"])
    assert kept_indices(ids, ["b", "c"]).tolist() == [0, 3]
    assert kept_indices(np.array([30, 10, 20]), np.array([20, 30])).tolist() == [0, 2]


def test_subset_yields_exactly_the_kept_examples_in_dataset_order():
    ds, ids, kept, kept_pos = poisoned()
    shuffled_kept = np.random.default_rng(1).permutation(kept)
    sub = KeptSubset(ds, shuffled_kept, ids=ids)
    assert len(sub) == len(kept)
    assert [sub[j][0] for j in range(len(sub))] == kept_pos.tolist()
    assert np.array_equal(sub.kept_ids, ids[kept_pos])
    assert all(torch.isfinite(sub[j][1]).all() for j in range(len(sub)))


def test_default_ids_are_positions():
    ds = TensorDataset(torch.arange(10))
    sub = KeptSubset(ds, [7, 2])
    assert [int(sub[j][0]) for j in range(len(sub))] == [2, 7]


def test_sampler_is_seeded_per_epoch_and_covers_the_kept_rows_once():
    ds, ids, kept, kept_pos = poisoned()
    a, b = KeptSampler(ds, kept, ids=ids, seed=3), KeptSampler(ds, kept, ids=ids, seed=3)
    torch.manual_seed(123)  # global state must not matter
    first = list(a)
    torch.manual_seed(999)
    assert list(b) == first
    assert sorted(first) == kept_pos.tolist() and len(a) == len(kept)
    second = list(a)  # the next pass is the next epoch
    assert sorted(second) == sorted(first) and second != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(KeptSampler(ds, kept, ids=ids, shuffle=False)) == kept_pos.tolist()


@pytest.mark.parametrize(
    ("kept", "message"),
    [([999_999], "not"), ([], "no kept ids"), ("dup", "repeat")],
)
def test_bad_kept_ids_get_one_clear_error(kept, message):
    ds, ids, good, _ = poisoned()
    kept = [good[0], good[0]] if kept == "dup" else kept
    with pytest.raises(InvalidInputError, match=message):
        KeptSubset(ds, kept, ids=ids)


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_like_distributed_sampler(drop_last):
    ds, ids, kept, kept_pos = poisoned(n=103, kept_share=0.5)  # 51 kept: not a multiple of 4
    shards = [list(KeptSampler(ds, kept, ids=ids, seed=5, num_replicas=4, rank=r, drop_last=drop_last))
              for r in range(4)]  # fmt: skip
    whole = list(KeptSampler(ds, kept, ids=ids, seed=5))
    assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
    drawn = [i for s in shards for i in s]
    if drop_last:
        assert len(drawn) == len(set(drawn)) == 48 and set(drawn) <= set(kept_pos.tolist())
    else:
        assert set(drawn) == set(kept_pos.tolist()) and len(drawn) == 52
    # rank r holds positions r, r+4, ... of the one shared permutation
    padded = (whole + whole)[: 4 * len(shards[0])]
    assert shards[1] == padded[1::4]
    with pytest.raises(InvalidInputError, match="rank 4"):
        KeptSampler(ds, kept, ids=ids, num_replicas=4, rank=4)


def test_iterable_dataset_and_bad_seed_are_refused():
    with pytest.raises(InvalidInputError, match="map-style"):
        KeptSampler(iter(range(3)), [0])
    with pytest.raises(InvalidInputError, match="seed"):
        KeptSampler(TensorDataset(torch.arange(3)), [0], seed=-1)


def _train(loader, epochs: int = 3, sampler: KeptSampler | None = None) -> tuple[torch.nn.Module, set[int]]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: set[int] = set()
    for epoch in range(epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        for pos, x, y in loader:
            seen.update(pos.tolist())
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model, seen


def test_a_real_training_loop_learns_from_kept_rows_only_and_repeats_bit_for_bit():
    ds, ids, kept, kept_pos = poisoned()
    runs = []
    for _ in range(2):
        sampler = KeptSampler(ds, kept, ids=ids, seed=0)
        model, seen = _train(DataLoader(ds, batch_size=32, sampler=sampler), sampler=sampler)
        runs.append(model)
        assert seen == set(kept_pos.tolist())
        assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN row was drawn
    assert all(torch.equal(p, q) for p, q in zip(runs[0].parameters(), runs[1].parameters(), strict=True))
    x, y = ds.x[kept_pos], ds.y[kept_pos]
    torch.manual_seed(0)
    untrained = torch.nn.Linear(4, 2)
    with torch.no_grad():  # training happened: the same initial weights fit the kept rows worse
        loss = torch.nn.functional.cross_entropy
        assert loss(runs[0](x), y) < loss(untrained(x), y)
    model, seen = _train(DataLoader(KeptSubset(ds, kept, ids=ids), batch_size=32, shuffle=True))
    assert seen == set(kept_pos.tolist())


@pytest.mark.filterwarnings("ignore")
def test_lightning_datamodule_trains_on_kept_rows(tmp_path):
    import lightning as L

    ds, ids, kept, kept_pos = poisoned()
    seen: set[int] = set()

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 2)

        def training_step(self, batch, _):
            pos, x, y = batch
            seen.update(pos.tolist())
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = kept_datamodule(ds, kept, ids=ids, batch_size=32)
    module = Module()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert seen == set(kept_pos.tolist())
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert len(dm.sampler) == len(kept)


def test_datamodule_state_carries_the_sampler_epoch():
    ds, ids, kept, _ = poisoned()
    a = kept_datamodule(ds, kept, ids=ids, seed=2)
    list(a.sampler)
    list(a.sampler)  # two epochs drawn
    b = kept_datamodule(ds, kept, ids=ids, seed=2)
    b.load_state_dict(a.state_dict())
    assert list(b.sampler) == list(a.sampler)

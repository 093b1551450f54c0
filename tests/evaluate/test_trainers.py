"""The one training loop (``fit_minibatches``) against a loop written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from selfprune.errors import InvalidInputError  # noqa: E402
from selfprune.evaluate.models import build_model  # noqa: E402
from selfprune.evaluate.trainers import TorchTrainer, fit_minibatches  # noqa: E402


def _data(n=203, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def _hand_loop(x, y, *, seed, batch_size, steps):
    net = build_model("mlp", (x.shape[1],), 2, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    done, seen = 0, []
    while done < steps:
        perm = torch.randperm(len(x), generator=gen)
        for lo in range(0, len(x), batch_size):
            idx = perm[lo : lo + batch_size]
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen.append(idx.numpy().copy())
            done += 1
            if done >= steps:
                break
    return net, seen


@pytest.mark.parametrize("seed, batch_size, steps", [(0, 32, 7), (1, 50, 13), (2, 203, 3), (3, 64, 20)])
def test_same_weights_and_batches_as_a_hand_written_loop(seed, batch_size, steps):
    x, y = _data(seed=seed)
    ref, ref_batches = _hand_loop(x, y, seed=seed, batch_size=batch_size, steps=steps)
    net = build_model("mlp", (x.shape[1],), 2, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    batches, epochs = [], []
    done = fit_minibatches(
        net, opt, x, y, batch_size=batch_size, generator=torch.Generator().manual_seed(seed), steps=steps,
        on_batch=lambda idx, logits: batches.append(idx.numpy().copy()), on_epoch=epochs.append,
    )  # fmt: skip
    assert done == steps == len(batches)
    assert all(np.array_equal(a, b) for a, b in zip(batches, ref_batches, strict=True))
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)
    per_epoch = -(-len(x) // batch_size)
    assert epochs == list(range(steps // per_epoch))  # whole epochs only


def test_epochs_mode_visits_every_row_once_per_epoch_and_calls_the_hooks():
    x, y = _data(n=97)
    net = build_model("linear", (x.shape[1],), 2, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    seen, ends = [], []
    done = fit_minibatches(
        net, opt, x, y, batch_size=10, generator=torch.Generator().manual_seed(0), epochs=3,
        on_batch=lambda idx, logits: seen.append((idx.numpy(), logits.shape)),
        on_epoch=lambda e: ends.append((e, len(seen))),
    )  # fmt: skip
    assert done == 30 and ends == [(0, 10), (1, 20), (2, 30)]
    for e in range(3):
        rows = np.concatenate([i for i, _ in seen[10 * e : 10 * (e + 1)]])
        assert sorted(rows.tolist()) == list(range(97))
    assert all(shape[1] == 2 for _, shape in seen)


def test_custom_loss_and_the_need_for_a_length():
    x, y = _data(n=40)
    net = build_model("linear", (x.shape[1],), 2, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    calls = []

    def loss(logits, idx, epoch):
        calls.append(epoch)
        return (logits**2).mean()

    fit_minibatches(net, opt, x, batch_size=20, generator=torch.Generator(), epochs=2, batch_loss=loss)
    assert calls == [0, 0, 1, 1]
    with pytest.raises(InvalidInputError, match="epochs or steps"):
        fit_minibatches(net, opt, x, y, batch_size=20, generator=torch.Generator())


def test_torch_trainer_is_deterministic_and_counts_steps():
    x, y = _data(n=120)
    a = TorchTrainer(model="mlp", steps=11, batch_size=16)(x.numpy(), y.numpy(), x.numpy(), y.numpy(), seed=4)
    b = TorchTrainer(model="mlp", steps=11, batch_size=16)(x.numpy(), y.numpy(), x.numpy(), y.numpy(), seed=4)
    assert a == b and a.steps == 11 and a.epochs == pytest.approx(11 / 8)


def test_schedules_differ_and_a_bad_one_is_refused():
    x, y = _data(n=120)
    args = (x.numpy(), y.numpy(), x.numpy(), y.numpy())
    kw = {"model": "mlp", "steps": 30, "batch_size": 16, "lr": 0.05}
    cosine = TorchTrainer(**kw)(*args, seed=1)
    constant = TorchTrainer(**kw, schedule="constant")(*args, seed=1)
    assert cosine.meta["schedule"] == "cosine" and constant.meta["schedule"] == "constant"
    assert cosine == TorchTrainer(**kw, schedule="cosine")(*args, seed=1)
    with pytest.raises(InvalidInputError, match="schedule"):
        TorchTrainer(model="mlp", schedule="step")
    with pytest.raises(InvalidInputError, match="lr"):
        TorchTrainer(model="mlp", lr=0.0)

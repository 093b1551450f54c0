"""Each framework adapter in a real (tiny, few-second) training run of that framework."""

import numpy as np
import pytest
import torch

from selfprune.dynamics.recorder import Recorder  # noqa: E402
from selfprune.dynamics.scores import dynamics_scores  # noqa: E402

N, D, C = 48, 4, 3


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, C, N)
    x = (np.eye(C, D)[y] * 3 + rng.normal(scale=0.5, size=(N, D))).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lightning_callback_records_every_example_each_epoch(tmp_path):
    import lightning.pytorch as pl

    from selfprune.dynamics.callbacks import LightningRecorder

    x, y = _data()
    ds = torch.utils.data.TensorDataset(torch.arange(N), x, y)

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(D, C)

        def training_step(self, batch, batch_idx):
            ids, xb, yb = batch
            logits = self.net(xb)
            return {"loss": torch.nn.functional.cross_entropy(logits, yb), "logits": logits}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    rec = Recorder(N, C, tmp_path / "rec")
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, callbacks=[LightningRecorder(rec)])  # fmt: skip
    loader = torch.utils.data.DataLoader(ds, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(0))
    trainer.fit(Tiny(), loader)
    assert rec.epochs == 3 and np.all(rec.counts() == 1)
    np.testing.assert_array_equal(rec.labels, y.numpy())
    t = dynamics_scores(Recorder.open(tmp_path / "rec"), ["aum", "forgetting"])
    assert t.n_examples == N
    # training improves the fit: mean margin of the last epoch exceeds the first
    m = rec.values("margin")
    assert m[:, -1].mean() > m[:, 0].mean()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hf_trainer_callback_records_every_example_each_epoch(tmp_path):
    import transformers

    from selfprune.dynamics.callbacks import HFRecorder

    x, y = _data()

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return N

        def __getitem__(self, i):
            return {"example_id": i, "inputs": x[i], "labels": y[i]}

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(D, C)

        def forward(self, inputs, labels=None):
            logits = self.net(inputs)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            return {"loss": loss, "logits": logits}

    rec = Recorder(N, C)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=8,
        learning_rate=0.1, remove_unused_columns=False, report_to=[], save_strategy="no",
        logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=Rows(),
                                   callbacks=[HFRecorder(rec)])  # fmt: skip
    trainer.train()
    assert rec.epochs == 2 and np.all(rec.counts() == 1)
    np.testing.assert_array_equal(rec.labels, y.numpy())
    assert dynamics_scores(rec, ["el2n", "confidence"]).n_examples == N


def test_missing_framework_names_the_extra(monkeypatch):
    import sys

    from selfprune.dynamics import callbacks
    from selfprune.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setattr(callbacks, "_BUILT", {})
    with pytest.raises(MissingExtraError, match=r"selfprune\[lightning\]"):
        callbacks.LightningRecorder  # noqa: B018

"""Thin framework adapters around a :class:`~selfprune.dynamics.recorder.Recorder`.

- ``LightningRecorder(recorder)``: a Lightning ``Callback``. ``training_step`` returns a dict with
  ``"loss"`` and ``"logits"``; ids and labels come from the batch, a dict with ``"id"``/``"ids"``
  and ``"label"``/``"labels"``/``"y"`` keys or a tuple ``(ids, x, y)``, or from ``get(outputs,
  batch) -> (ids, logits, labels)``. Its ``state_dict`` goes into Lightning checkpoints, so a
  resumed fit continues the recording at the checkpoint's epoch.
- ``HFRecorder(recorder, id_key="example_id")``: a Hugging Face ``TrainerCallback``. The Trainer
  does not hand logits to callbacks, so it hooks the model: a forward pre-hook takes the id column
  out of the inputs (set ``remove_unused_columns=False`` in ``TrainingArguments`` so the column
  reaches the model) and a forward hook reads ``logits`` and ``labels`` of training-mode calls.

Both are built on first use so that ``import selfprune`` loads neither framework; without the
framework, using one raises MissingExtraError naming the extra to install.
"""

from __future__ import annotations

from typing import Any

from selfprune.errors import InvalidInputError, require

_ID_KEYS = ("id", "ids", "idx", "index", "example_id")
_LABEL_KEYS = ("label", "labels", "y", "target", "targets")


def default_get(outputs, batch) -> tuple[Any, Any, Any]:
    """(ids, logits, labels) from a Lightning ``training_step`` output and its batch."""
    if not isinstance(outputs, dict) or "logits" not in outputs:
        raise InvalidInputError(
            "LightningRecorder: training_step must return a dict with 'loss' and 'logits' "
            "(or pass get=(outputs, batch) -> (ids, logits, labels))"
        )
    if isinstance(batch, dict):
        ids = next((batch[k] for k in _ID_KEYS if k in batch), None)
        labels = next((batch[k] for k in _LABEL_KEYS if k in batch), None)
        if ids is None or labels is None:
            raise InvalidInputError(
                f"LightningRecorder: batch dict needs an id key {_ID_KEYS} and a label key "
                f"{_LABEL_KEYS}; it has {sorted(batch)}"
            )
        return ids, outputs["logits"], labels
    if isinstance(batch, (tuple, list)) and len(batch) == 3:
        return batch[0], outputs["logits"], batch[2]
    raise InvalidInputError(
        "LightningRecorder: batch must be a dict or a tuple (ids, x, y); "
        "pass get= for other layouts"
    )


def _build_lightning():
    pl = require("lightning.pytorch", "lightning")

    class LightningRecorder(pl.Callback):
        """Records every training batch into ``recorder``; closes an epoch at its end."""

        def __init__(self, recorder, get=None) -> None:
            super().__init__()
            self.recorder = recorder
            self.get = get or default_get

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            ids, logits, labels = self.get(outputs, batch)
            self.recorder.update(ids, logits, labels)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.recorder.end_epoch()

        def state_dict(self) -> dict[str, Any]:
            return self.recorder.state_dict()

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.recorder.load_state_dict(state_dict)

    return LightningRecorder


def _build_hf():
    transformers = require("transformers", "hf")

    class HFRecorder(transformers.TrainerCallback):
        """Records the logits of the Trainer's training forward passes into ``recorder``."""

        def __init__(self, recorder, id_key: str = "example_id", label_key: str = "labels") -> None:
            self.recorder = recorder
            self.id_key = id_key
            self.label_key = label_key
            self._handles: list = []
            self._pending = None

        def _pre(self, module, args, kwargs):
            ids = kwargs.pop(self.id_key, None)
            if module.training:
                if ids is None:
                    raise InvalidInputError(
                        f"HFRecorder: the batch has no {self.id_key!r} column; "
                        "add it to the data set "
                        "and set remove_unused_columns=False in TrainingArguments"
                    )
                self._pending = (ids, kwargs.get(self.label_key))
            return args, kwargs

        def _post(self, module, args, kwargs, output):
            if module.training and self._pending is not None:
                ids, labels = self._pending
                self._pending = None
                logits = output["logits"] if isinstance(output, dict) else output.logits
                if labels is None:
                    raise InvalidInputError(
                        f"HFRecorder: the batch has no {self.label_key!r} column"
                    )
                self.recorder.update(ids, logits, labels)

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if model is None:
                raise InvalidInputError("HFRecorder: the Trainer passed no model to on_train_begin")
            self._handles = [
                model.register_forward_pre_hook(self._pre, with_kwargs=True),
                model.register_forward_hook(self._post, with_kwargs=True),
            ]

        def on_epoch_end(self, args, state, control, **kwargs):
            self.recorder.end_epoch()

        def on_train_end(self, args, state, control, **kwargs):
            for h in self._handles:
                h.remove()
            self._handles = []

    return HFRecorder


_BUILDERS = {"LightningRecorder": _build_lightning, "HFRecorder": _build_hf}
_BUILT: dict[str, type] = {}


def __getattr__(name: str):
    if name in _BUILDERS:
        if name not in _BUILT:
            cls = _BUILDERS[name]()
            cls.__qualname__ = name
            cls.__module__ = __name__
            _BUILT[name] = cls
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

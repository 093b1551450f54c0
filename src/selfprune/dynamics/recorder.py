"""The Recorder: per-example, per-epoch training signals from any training loop.

``update(ids, logits, labels)`` turns a batch's logits (already computed by the loop: no extra
forward pass) into five per-example values and adds them to the current epoch:

- ``prob``: softmax probability of the label (cartography),
- ``margin``: label logit minus the largest other logit (AUM),
- ``el2n``: ||softmax - onehot(label)||_2 (EL2N),
- ``loss``: cross-entropy,
- ``correct``: 1 if the arg-max is the label (forgetting, correctness).

Storage is epoch-major, ``(epochs, N)``, one file per value, memory-mapped when ``path`` is given:
appending an epoch appends to the files, and a killed process leaves every value it wrote in
them. A small ``state.json`` (written atomically at each ``end_epoch``) says how many epochs are
complete. Repeated ids within an epoch (oversampling, samplers with replacement) are averaged: the
Recorder keeps sums and counts. Distributed runs keep one Recorder per rank and combine them with
:meth:`Recorder.merge`, which adds sums and counts by id, so the merged result equals recording
everything in one process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import check_ids, check_int
from selfprune.errors import InvalidInputError, StoreError
from selfprune.io.atomic import atomic_path, write_json_atomic

FIELDS = ("prob", "margin", "el2n", "loss", "correct")
STATE_FILE = "state.json"
FORMAT_VERSION = 1


def batch_stats(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The five per-example values of one batch of (B, C) logits and (B,) labels, float64 (B,)."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(z.shape[0])
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1)
    p = e / s[:, None]
    zy = z[rows, labels]
    py = p[rows, labels]
    other = z.copy()
    other[rows, labels] = -np.inf
    sq = np.einsum("bc,bc->b", p, p) - 2.0 * py + 1.0
    return {
        "prob": py,
        "margin": zy - other.max(axis=1),
        "el2n": np.sqrt(np.maximum(sq, 0.0)),
        "loss": np.log(s) - zy,
        "correct": (z.argmax(axis=1) == labels).astype(np.float64),
    }


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        if getattr(x, "dtype", None) is not None and "bfloat16" in str(x.dtype):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


class Recorder:
    """Records training dynamics of ``n_examples`` examples over epochs.

    ``ids``: the example ids the loop will pass to :meth:`update` (unique ints or strings);
    ``None`` means ``0..n_examples-1``. ``path``: a folder to memory-map into (``None`` keeps
    everything in memory). Opening a folder that already holds a recording resumes it: complete
    epochs are kept and the interrupted epoch is cleared (the loop repeats it), unless
    ``keep_partial=True`` (for loops that resume mid-epoch).
    """

    def __init__(
        self,
        n_examples: int | None = None,
        num_classes: int | None = None,
        path: str | os.PathLike | None = None,
        *,
        ids=None,
        capacity: int = 8,
        keep_partial: bool = False,
        readonly: bool = False,
    ) -> None:
        self.path = None if path is None else Path(path)
        self._readonly = readonly
        self._skipped = 0
        state = self._read_state() if self.path is not None else None
        if state is not None:
            if n_examples is not None and int(n_examples) != state["n_examples"]:
                raise StoreError(
                    f"Recorder: {self.path} records {state['n_examples']} examples, "
                    f"not {n_examples}"
                )
            if num_classes is not None and int(num_classes) != state["num_classes"]:
                raise StoreError(
                    f"Recorder: {self.path} records {state['num_classes']} classes, "
                    f"not {num_classes}"
                )
            self.n_examples = state["n_examples"]
            self.num_classes = state["num_classes"]
            self.epochs_done = state["epochs_done"]
            self._capacity = state["capacity"]
            self._skipped = state.get("skipped", 0)
            self.ids = np.load(self.path / "ids.npy", allow_pickle=False)
            if ids is not None and not np.array_equal(
                check_ids(ids, self.n_examples, caller="Recorder"), self.ids
            ):
                raise StoreError(f"Recorder: {self.path} was recorded with different ids")
        else:
            if readonly:
                raise StoreError(
                    f"Recorder.open: no recording at {self.path} (missing {STATE_FILE})"
                )
            if n_examples is None or num_classes is None:
                raise InvalidInputError(
                    "Recorder: n_examples and num_classes are required for a new recording"
                )
            self.n_examples = check_int(n_examples, caller="Recorder", name="n_examples")
            self.num_classes = check_int(num_classes, caller="Recorder", name="num_classes", low=2)
            self.ids = check_ids(ids, self.n_examples, caller="Recorder")
            self.epochs_done = 0
            self._capacity = check_int(capacity, caller="Recorder", name="capacity")
            if self.path is not None:
                self.path.mkdir(parents=True, exist_ok=True)
                with atomic_path(self.path / "ids.npy") as tmp:
                    with open(tmp, "wb") as fh:
                        np.save(fh, self.ids, allow_pickle=False)
                for name, dtype in self._files():
                    shape = (
                        (self._capacity, self.n_examples)
                        if name != "labels"
                        else (self.n_examples,)
                    )
                    with open(self.path / f"{name}.bin", "wb") as fh:
                        fh.truncate(int(np.prod(shape)) * np.dtype(dtype).itemsize)
                np.memmap(self.path / "labels.bin", dtype=np.int64, mode="r+")[:] = -1
        self._identity = self.ids.dtype.kind == "i" and np.array_equal(
            self.ids, np.arange(self.n_examples)
        )
        if not self._identity:
            self._sorter = np.argsort(self.ids, kind="stable")
            self._sorted = self.ids[self._sorter]
        self._open_arrays()
        if state is None:
            self._write_state()
        elif not keep_partial and not readonly:
            self._clear_rows(self.epochs_done, self._capacity)

    # ------------------------------------------------------------------ storage
    @staticmethod
    def _files() -> list[tuple[str, Any]]:
        return [(f, np.float32) for f in FIELDS] + [("count", np.uint32), ("labels", np.int64)]

    def _open_arrays(self) -> None:
        self._arr: dict[str, np.ndarray] = {}
        for name, dtype in self._files():
            shape = (self._capacity, self.n_examples) if name != "labels" else (self.n_examples,)
            if self.path is None:
                self._arr[name] = (
                    np.full(shape, -1, dtype) if name == "labels" else np.zeros(shape, dtype)
                )
            else:
                mode = "r" if self._readonly else "r+"
                self._arr[name] = np.memmap(
                    self.path / f"{name}.bin", dtype=dtype, mode=mode, shape=shape
                )

    def _grow(self, need: int) -> None:
        new_cap = max(need, 2 * self._capacity)
        if self.path is None:
            for name, arr in self._arr.items():
                if name != "labels":
                    grown = np.zeros((new_cap, self.n_examples), arr.dtype)
                    grown[: self._capacity] = arr
                    self._arr[name] = grown
        else:
            self.flush()
            self._arr = {}
            for name, dtype in self._files():
                if name != "labels":
                    os.truncate(
                        self.path / f"{name}.bin",
                        new_cap * self.n_examples * np.dtype(dtype).itemsize,
                    )
            self._capacity = new_cap
            self._open_arrays()
            self._write_state()
        self._capacity = new_cap

    def _clear_rows(self, lo: int, hi: int) -> None:
        if lo < hi:
            for name, arr in self._arr.items():
                if name != "labels":
                    arr[lo:hi] = 0

    def _read_state(self) -> dict | None:
        f = self.path / STATE_FILE
        if not f.is_file():
            return None
        try:
            state = json.loads(f.read_text())
            if state.get("format") != FORMAT_VERSION:
                raise StoreError(
                    f"Recorder: {f} has format {state.get('format')!r}, expected {FORMAT_VERSION}"
                )
            return state
        except (json.JSONDecodeError, OSError) as exc:
            raise StoreError(f"Recorder: cannot read {f} ({exc})") from exc

    def _write_state(self) -> None:
        if self.path is not None and not self._readonly:
            write_json_atomic(self.path / STATE_FILE, self._meta())

    def _meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION, "n_examples": self.n_examples,
            "num_classes": self.num_classes,
            "epochs_done": self.epochs_done, "capacity": self._capacity, "fields": list(FIELDS),
            "skipped": self._skipped,
        }  # fmt: skip

    def flush(self) -> None:
        """Push memory-mapped writes to the files (also done at every ``end_epoch``)."""
        for arr in self._arr.values():
            if isinstance(arr, np.memmap) and not self._readonly:
                arr.flush()

    @classmethod
    def open(cls, path: str | os.PathLike) -> Recorder:
        """Open an existing recording read-only, including an interrupted epoch's partial data."""
        return cls(path=path, readonly=True)

    # ------------------------------------------------------------------ recording
    def positions(self, ids) -> np.ndarray:
        """Row positions of example ids; raises InvalidInputError for unknown ids."""
        ids = _to_numpy(ids).reshape(-1)
        if self._identity:
            if ids.dtype.kind not in "iu":
                raise InvalidInputError(
                    f"Recorder.update: ids must be integers, got dtype {ids.dtype}"
                )
            pos = ids.astype(np.int64)
            if len(pos) and (pos.min() < 0 or pos.max() >= self.n_examples):
                bad = pos[(pos < 0) | (pos >= self.n_examples)][0]
                raise InvalidInputError(
                    f"Recorder.update: id {bad} outside 0..{self.n_examples - 1}"
                )
            return pos
        ids = (
            ids.astype(self._sorted.dtype)
            if ids.dtype.kind in "iu" and self._sorted.dtype.kind == "i"
            else ids
        )
        where = np.searchsorted(self._sorted, ids)
        where = np.minimum(where, len(self._sorted) - 1)
        found = self._sorted[where] == ids
        if not np.all(found):
            raise InvalidInputError(f"Recorder.update: unknown id {ids[~found][0].item()!r}")
        return self._sorter[where]

    def update(self, ids, logits, labels) -> None:
        """Add one batch: ``ids`` (B,), ``logits`` (B, C), ``labels`` (B,); torch or numpy.

        Rows with non-finite logits (a diverged step) are skipped and counted in the state.
        """
        if self._readonly:
            raise StoreError("Recorder.update: this recording was opened read-only")
        z = _to_numpy(logits)
        y = _to_numpy(labels).reshape(-1)
        if z.ndim != 2 or z.shape[1] != self.num_classes:
            raise InvalidInputError(
                f"Recorder.update: logits must be (B, {self.num_classes}), got shape {z.shape}"
            )
        if len(y) != len(z):
            raise InvalidInputError(f"Recorder.update: {len(y)} labels for {len(z)} logits rows")
        if len(y) == 0:
            return
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= self.num_classes:
            raise InvalidInputError(
                f"Recorder.update: labels must be integers in [0, {self.num_classes}), got "
                f"{y.dtype} in [{y.min()}, {y.max()}]"
            )
        pos = self.positions(ids)
        if len(pos) != len(y):
            raise InvalidInputError(f"Recorder.update: {len(pos)} ids for {len(y)} labels")
        y = y.astype(np.int64)
        ok = np.isfinite(z).all(axis=1)
        if not ok.all():
            self._skipped += int((~ok).sum())
            z, y, pos = z[ok], y[ok], pos[ok]
        e = self.epochs_done
        if e >= self._capacity:
            self._grow(e + 1)
        stats = batch_stats(z, y)
        for name in FIELDS:
            np.add.at(self._arr[name][e], pos, stats[name])
        np.add.at(self._arr["count"][e], pos, 1)
        self._arr["labels"][pos] = y

    def end_epoch(self) -> None:
        """Close the current epoch: flush and record it as complete."""
        if self._readonly:
            raise StoreError("Recorder.end_epoch: this recording was opened read-only")
        if self.epochs_done >= self._capacity:
            self._grow(self.epochs_done + 1)
        self.epochs_done += 1
        self.flush()
        self._write_state()

    # ------------------------------------------------------------------ reading
    @property
    def epochs(self) -> int:
        """Number of complete epochs."""
        return self.epochs_done

    @property
    def labels(self) -> np.ndarray:
        """Last label seen per example (N,), -1 where the example was never presented."""
        return np.array(self._arr["labels"])

    def counts(self, *, partial: bool = False) -> np.ndarray:
        """Presentations per example and epoch, (N, E) int64 (E + 1 columns with ``partial``)."""
        hi = min(self.epochs_done + (1 if partial else 0), self._capacity)
        return np.array(self._arr["count"][:hi], dtype=np.int64).T

    def values(self, field: str, *, partial: bool = False) -> np.ndarray:
        """Per-epoch mean of ``field`` over an example's presentations, (N, E) float64, NaN where
        the example was not presented that epoch. ``partial`` adds the epoch in progress."""
        if field not in FIELDS:
            raise InvalidInputError(
                f"Recorder.values: field must be one of {FIELDS}, got {field!r}"
            )
        hi = min(self.epochs_done + (1 if partial else 0), self._capacity)
        total = np.array(self._arr[field][:hi], dtype=np.float64).T
        cnt = np.array(self._arr["count"][:hi], dtype=np.float64).T
        return np.divide(total, cnt, out=np.full(total.shape, np.nan), where=cnt > 0)

    # ------------------------------------------------------------------ state, merging
    def state_dict(self) -> dict[str, Any]:
        """A small, picklable state; arrays are included only for an in-memory Recorder."""
        state: dict[str, Any] = {
            **self._meta(),
            "path": None if self.path is None else str(self.path),
        }
        if self.path is None:
            state["ids"] = self.ids.copy()
            state["arrays"] = {
                k: np.array(v[: self.epochs_done + 1]) if k != "labels" else v.copy()
                for k, v in self._arr.items()
            }
        return state

    def _check_file_state(self, state: dict[str, Any], done: int) -> None:
        """A file-backed state names its folder: only that folder's files hold its epochs."""
        saved = state.get("path")
        if saved is None:
            raise StoreError("Recorder.load_state_dict: the state holds neither arrays nor a recording folder")
        if self.path is None or Path(saved).resolve() != self.path.resolve():
            here = "memory" if self.path is None else str(self.path)
            raise StoreError(
                f"Recorder.load_state_dict: the state was recorded in {saved}, this Recorder records "
                f"in {here}; open that folder (Recorder.open or path=) instead"
            )
        if done > self.epochs_done:
            raise StoreError(
                f"Recorder.load_state_dict: the state has {done} complete epochs, the files in "
                f"{self.path} hold {self.epochs_done}"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Return to a saved state (e.g. a checkpoint): epochs recorded after it are discarded."""
        if (
            state.get("n_examples") != self.n_examples
            or state.get("num_classes") != self.num_classes
        ):
            raise StoreError(
                f"Recorder.load_state_dict: state is for {state.get('n_examples')} examples x "
                f"{state.get('num_classes')} classes, this Recorder has {self.n_examples} x "
                f"{self.num_classes}"
            )
        done = int(state["epochs_done"])
        if "arrays" not in state:
            self._check_file_state(state, done)
        if "arrays" in state:
            self.ids = np.asarray(state["ids"])
            need = max(done + 1, self._capacity)
            if need > self._capacity:
                self._grow(need)
            for k, v in state["arrays"].items():
                if k == "labels":
                    self._arr[k][:] = v
                else:
                    self._arr[k][:] = 0
                    self._arr[k][: len(v)] = v
        if done > self._capacity:
            raise StoreError(
                f"Recorder.load_state_dict: state has {done} epochs, files hold {self._capacity}"
            )
        self.epochs_done = done
        self._skipped = int(state.get("skipped", 0))
        self._clear_rows(done, self._capacity)
        self.flush()
        self._write_state()

    @classmethod
    def merge(cls, recorders, path: str | os.PathLike | None = None) -> Recorder:
        """Combine per-rank Recorders by example id: sums and counts add, labels must agree.

        All must have the same number of complete epochs and classes. The merged Recorder covers
        the union of their ids (in first-seen order).
        """
        recs = list(recorders)
        if not recs:
            raise InvalidInputError("Recorder.merge: no recorders given")
        epochs = {r.epochs_done for r in recs}
        classes = {r.num_classes for r in recs}
        if len(epochs) != 1 or len(classes) != 1:
            raise InvalidInputError(
                f"Recorder.merge: recorders differ in complete epochs {sorted(epochs)} "
                f"or classes {sorted(classes)}"
            )
        all_ids = np.concatenate([r.ids for r in recs])
        _, first = np.unique(all_ids, return_index=True)
        ids = all_ids[np.sort(first)]
        out = cls(
            len(ids), recs[0].num_classes, path, ids=ids, capacity=max(1, recs[0].epochs_done)
        )
        if out.epochs_done:
            raise StoreError(f"Recorder.merge: {path} already holds a recording")
        e = recs[0].epochs_done
        for r in recs:
            pos = out.positions(r.ids)
            for name in (*FIELDS, "count"):
                out._arr[name][:e, pos] += r._arr[name][:e]
            lab = r._arr["labels"]
            known = lab >= 0
            cur = out._arr["labels"][pos[known]]
            clash = (cur >= 0) & (cur != lab[known])
            if clash.any():
                raise InvalidInputError(
                    f"Recorder.merge: example {r.ids[known][clash][0].item()!r} has "
                    "different labels across recorders"
                )
            out._arr["labels"][pos[known]] = lab[known]
            out._skipped += r._skipped
        out.epochs_done = e
        out.flush()
        out._write_state()
        return out

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return (
            f"Recorder(n_examples={self.n_examples}, num_classes={self.num_classes}, "
            f"epochs={self.epochs_done}, at={where})"
        )

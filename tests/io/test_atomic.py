"""The one JSON sanitiser: ``jsonable`` (the ``default=`` hook and a whole-value converter)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from selfprune.io.atomic import jsonable, write_json_atomic


def _reference_plain(obj):
    """What the audit's figures went through: recursive, numpy scalars to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _reference_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_reference_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _random_tree(rng, depth=0):
    kind = rng.integers(0, 9 if depth < 3 else 6)
    if kind == 0:
        return float(rng.choice([rng.normal(), np.nan, np.inf, -np.inf]))
    if kind == 1:
        return np.float32(rng.choice([rng.normal(), np.nan]))
    if kind == 2:
        return np.int64(rng.integers(-5, 5))
    if kind == 3:
        return bool(rng.integers(0, 2))
    if kind == 4:
        return str(rng.integers(0, 100))
    if kind == 5:
        return None
    if kind == 6:
        return [_random_tree(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    if kind == 7:
        return tuple(_random_tree(rng, depth + 1) for _ in range(rng.integers(0, 4)))
    return {f"k{i}" if i % 2 else i: _random_tree(rng, depth + 1) for i in range(rng.integers(0, 4))}


@pytest.mark.parametrize("seed", range(20))
def test_finite_mode_matches_the_recursive_reference(seed):
    tree = {"root": _random_tree(np.random.default_rng(seed))}
    got = jsonable(tree, finite=True, other=lambda o: o)
    assert got == _reference_plain(tree)
    json.dumps(got, allow_nan=False)  # really JSON: no NaN left


def test_default_hook_converts_numpy_and_paths_and_refuses_the_rest(tmp_path):
    obj = {"a": np.arange(3), "b": np.float32(0.25), "c": Path("x") / "y", "d": [np.int8(3)], "e": np.bool_(True)}
    text = json.dumps(obj, default=jsonable, sort_keys=True)
    assert json.loads(text) == {"a": [0, 1, 2], "b": 0.25, "c": str(Path("x") / "y"), "d": [3], "e": True}
    nan = json.dumps(np.array([np.nan, 1.0], dtype=np.float32), default=jsonable)
    assert nan == "[NaN, 1.0]"  # finite=False leaves NaN for json to write
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        json.dumps({"o": object()}, default=jsonable)
    assert json.dumps({"s": {1, 2}}, default=lambda o: jsonable(o, other=repr)) == '{"s": "{1, 2}"}'
    write_json_atomic(tmp_path / "j.json", obj)
    assert json.loads((tmp_path / "j.json").read_text()) == json.loads(text)


def test_atomic_dir_appears_whole_or_not_at_all_and_respects_inputs(tmp_path):
    from selfprune.errors import InvalidInputError
    from selfprune.io.atomic import atomic_dir, protect_inputs

    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "half") as tmp:
        (tmp / "a.txt").write_text("x")
        raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary twin is left
    with atomic_dir(tmp_path / "whole") as tmp:
        (tmp / "a.txt").write_text("x")
    assert (tmp_path / "whole" / "a.txt").read_text() == "x"
    (tmp_path / "in").mkdir()
    with protect_inputs([tmp_path / "in"]), pytest.raises(InvalidInputError, match="overwrite the input"):
        with atomic_dir(tmp_path / "in" / "sub"):
            pass
    assert list((tmp_path / "in").iterdir()) == []

"""Atomic writes: a file appears complete or not at all (write to a temp file, then rename)."""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``."""
    target = Path(path)
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp makes the file private (0600); a finished output gets what open() would give
            os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is renamed to ``path``.

    ``path`` must not exist yet (a folder is never merged into or replaced); files written inside
    keep their own modes, the folder gets what ``mkdir`` would give under the umask.
    """
    import shutil

    from selfprune.errors import InvalidInputError

    target = Path(path)
    if target.exists():
        raise InvalidInputError(f"{target} already exists; name a new folder to write")
    _refuse_inputs(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def current_umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_overwrite(
    out: str | os.PathLike, *inputs: str | os.PathLike | None, caller: str, flag: str = "--out"
) -> None:
    """Raise InvalidInputError when ``out`` is one of ``inputs`` or lies inside an input folder.

    Inputs that do not exist on disk (built-in data names, model names) are not paths and are
    skipped. The same file under another name (a symbolic or hard link) counts as the input.
    """
    from selfprune.errors import InvalidInputError

    for given in inputs:
        if given is None or not Path(given).exists():
            continue
        if _overlaps(Path(out), Path(given)):
            raise InvalidInputError(f"{caller}: {flag} {out} would overwrite the input {given}; choose another path")


def _overlaps(target: Path, src: Path) -> bool:
    """``target`` is ``src`` (by path or by inode) or lies inside the folder ``src``."""
    t, s = target.resolve(), src.resolve()
    if t == s or s in t.parents:
        return True
    return target.exists() and os.path.samefile(target, src)


_INPUTS: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("selfprune_inputs", default=())


@contextlib.contextmanager
def protect_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """Within the block, :func:`atomic_path` refuses to replace any of ``paths`` or write inside them.

    The command line wraps every command in it with the command's inputs, so that no output,
    however it is named (a twin file, a file inside an output folder), can replace an input.
    """
    token = _INPUTS.set(tuple(Path(p) for p in paths if Path(p).exists()))
    try:
        yield
    finally:
        _INPUTS.reset(token)


def _check_target(target: Path) -> None:
    from selfprune.errors import InvalidInputError

    if target.is_dir():
        raise InvalidInputError(f"{target} is a folder; name a file to write")
    _refuse_inputs(target)


def _refuse_inputs(target: Path) -> None:
    """Refuse ``target`` if it is, or lies inside, one of the inputs that ``protect_inputs`` holds."""
    from selfprune.errors import InvalidInputError

    for src in _INPUTS.get():
        if _overlaps(target, src):
            raise InvalidInputError(f"refusing to write {target}: it would overwrite the input {src}")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=jsonable) + "\n")


def jsonable(obj: Any, *, finite: bool = False, other: Callable[[Any], Any] | None = None) -> Any:
    """A JSON-ready form of ``obj``; also the ``default=`` hook of ``json.dumps``.

    numpy scalars become Python numbers, arrays lists, paths strings; dicts (keys as ``str``),
    lists and tuples are converted item by item. ``finite=True`` turns NaN and infinities into
    None. Anything else goes to ``other`` (e.g. ``repr``), or raises TypeError when it is None.
    """
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v, finite=finite, other=other) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v, finite=finite, other=other) for v in obj]
    if isinstance(obj, np.ndarray):
        plain = obj.tolist()
        return jsonable(plain, finite=finite, other=other) if finite or obj.dtype == object else plain
    if isinstance(obj, np.generic):
        obj = obj.item()
        if isinstance(obj, np.generic | np.ndarray):  # nothing Python-native to give (e.g. np.void)
            return _other(obj, other)
        return jsonable(obj, finite=finite, other=other)
    if isinstance(obj, float):
        return None if finite and not math.isfinite(obj) else obj
    if obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return _other(obj, other)


def _other(obj: Any, other: Callable[[Any], Any] | None) -> Any:
    if other is None:
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
    return other(obj)

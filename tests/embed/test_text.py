"""Text encoders: protocol, shapes, normalisation, determinism, batching, semantics, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from selfprune.embed import get_encoder
from selfprune.embed.base import Encoder
from selfprune.errors import InvalidInputError

TEXTS = [
    "A warm, funny and moving film.",
    "A warm, funny and touching movie.",
    "The plot collapses into tedium long before the end.",
    "Quarterly earnings rose four percent on strong exports.",
]


@pytest.fixture(scope="module")
def wordllama():
    return get_encoder("wordllama")


def test_wordllama_protocol_and_shape(wordllama):
    assert isinstance(wordllama, Encoder)
    assert wordllama.modality == "text" and wordllama.name == "wordllama"
    assert wordllama.fit(TEXTS) is wordllama
    e = wordllama.encode(TEXTS)
    assert e.dtype == np.float32 and e.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    p = wordllama.params()
    assert p["dim"] == 256 and p["encoder"] == "wordllama" and p["normalize"] is True


def test_wordllama_batching_and_determinism(wordllama):
    many = TEXTS * 40
    small = get_encoder("wordllama", batch_size=7)
    a = wordllama.encode(many)
    b = small.encode(many)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(wordllama.encode(TEXTS), wordllama.encode(TEXTS))
    # one text alone embeds as it does inside a batch
    np.testing.assert_allclose(wordllama.encode(TEXTS[2:3])[0], a[2], atol=1e-6)


def test_wordllama_semantics(wordllama):
    e = wordllama.encode(TEXTS)
    s = e @ e.T
    assert s[0, 1] > s[0, 2] and s[0, 1] > s[0, 3]


def test_wordllama_truncated_dim_and_raw():
    e = get_encoder("wordllama", dim=64, normalize=False).encode(TEXTS)
    assert e.shape == (4, 64)
    assert not np.allclose(np.linalg.norm(e, axis=1), 1.0)
    with pytest.raises(InvalidInputError, match="dim must be one of"):
        get_encoder("wordllama", dim=100)


def test_wordllama_empty_batch_and_empty_text(wordllama):
    assert wordllama.encode([]).shape == (0, 256)
    e = wordllama.encode(["", "a film"])
    assert np.all(np.isfinite(e))
    assert np.all(e[0] == 0)  # no tokens, no direction: a zero vector, never NaN


@pytest.mark.parametrize("bad", ["just one string", [1, 2], None])
def test_bad_batches(wordllama, bad):
    with pytest.raises(InvalidInputError, match="WordLlamaEncoder.encode: batch"):
        wordllama.encode(bad)


@pytest.mark.slow
def test_minilm_shape_semantics_and_agreement_across_batches():
    enc = get_encoder("minilm", batch_size=2)
    assert isinstance(enc, Encoder) and enc.fit(None) is enc
    e = enc.encode(TEXTS)
    assert e.dtype == np.float32 and e.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    s = e @ e.T
    assert s[0, 1] > s[0, 2] > s[0, 3]
    single = enc.encode(TEXTS[3:])
    np.testing.assert_allclose(single[0], e[3], atol=1e-5)
    assert enc.params()["model"].endswith("all-MiniLM-L6-v2")
    with pytest.raises(InvalidInputError, match="MiniLMEncoder.encode"):
        enc.encode("not a list")

"""The test embedder, the registry and the weights check: no model is loaded here."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from federation.events import ModelId
from memnode.embedders import (
    DEFAULT_EMBEDDER,
    EMBEDDERS,
    Embedder,
    EmbedderError,
    HashEmbedder,
    file_sha256,
    load_embedder,
)
from memnode.embedders.base import _verified_sha256
from memnode.errors import InvalidArgument, MemnodeError

TEXTS = [
    "The cat sat on the mat.",
    "Deploy the service to the staging cluster",
    "",
    "!!! ???",
    "Ünïcödé wörds and numbers 42",
]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_satisfies_the_port() -> None:
    emb = HashEmbedder()
    assert isinstance(emb, Embedder)
    assert emb.model == ModelId("test-hash", 384, emb.model.fingerprint)
    assert len(emb.model.fingerprint) == 16


def test_shape_dtype_and_layout() -> None:
    out = HashEmbedder().embed(TEXTS)
    assert out.shape == (len(TEXTS), 384)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous


def test_rows_are_unit_length_even_without_words() -> None:
    out = HashEmbedder().embed(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # "" and "!!! ???" have no word token: both map to the empty word's vector.
    np.testing.assert_array_equal(out[2], out[3])


@pytest.mark.parametrize("texts", [[], ()], ids=["list", "tuple"])
def test_empty_input(texts: Sequence[str]) -> None:
    out = HashEmbedder(dim=16).embed(texts)
    assert out.shape == (0, 16)
    assert out.dtype == np.float32


def test_deterministic_across_instances_and_batches() -> None:
    a = HashEmbedder().embed(TEXTS)
    b = HashEmbedder().embed(TEXTS)
    np.testing.assert_array_equal(a, b)
    single = np.stack([HashEmbedder().embed([t])[0] for t in TEXTS])
    np.testing.assert_array_equal(a, single)


def test_golden_values_do_not_drift() -> None:
    """Pinned output: vectors must be identical on every machine and numpy version."""
    emb = HashEmbedder()
    assert emb.model.fingerprint == "b8cfed7fdbdc850d"
    got = emb.embed(["Hello, world!"])[0][:4]
    np.testing.assert_allclose(got, [-0.056677, -0.052436, -0.04462, -0.067112], atol=2e-6)


def test_lowercases_and_ignores_punctuation() -> None:
    out = HashEmbedder().embed(["Hello, World!", "hello world", "HELLO   world."])
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)


def test_shared_words_are_closer() -> None:
    q, near, far = HashEmbedder().embed(
        [
            "deploy the payment service",
            "rollback of the payment service deploy",
            "quarterly revenue grew",
        ]
    )
    assert _cos(q, near) > 0.5
    assert abs(_cos(q, far)) < 0.3
    assert _cos(q, near) > _cos(q, far) + 0.3


def test_unrelated_words_are_nearly_orthogonal() -> None:
    words = [f"word{i}" for i in range(50)]
    out = HashEmbedder().embed(words)
    sims = out @ out.T
    off_diagonal = sims[~np.eye(len(words), dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.3


def test_dim_is_configurable_and_in_the_fingerprint() -> None:
    small, default = HashEmbedder(dim=32), HashEmbedder()
    assert small.model.dim == 32
    assert small.embed(["x"]).shape == (1, 32)
    assert small.model.fingerprint != default.model.fingerprint
    assert small.model != default.model
    assert HashEmbedder(dim=32).model == small.model


@pytest.mark.parametrize("dim", [0, -1, 65_537, True, 3.5])
def test_bad_dim_is_rejected(dim: object) -> None:
    with pytest.raises(InvalidArgument):
        HashEmbedder(dim=dim)  # type: ignore[arg-type]


def test_a_single_string_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="single string"):
        HashEmbedder().embed("one text, not a list")


def test_non_string_items_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match=r"texts\[1\]"):
        HashEmbedder().embed(["ok", b"bytes"])  # type: ignore[list-item]


def test_concurrent_calls_agree_with_serial_ones() -> None:
    emb = HashEmbedder()
    batches = [[f"text {i} {j}" for j in range(20)] for i in range(16)]
    serial = [emb.embed(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(emb.embed, batches))
    for s, p in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(s, p)


def test_registry_names() -> None:
    assert set(EMBEDDERS) == {"minilm", "minilm-int8", "test-hash"}
    assert DEFAULT_EMBEDDER == "minilm"


def test_load_embedder_builds_the_test_embedder() -> None:
    emb = load_embedder("test-hash")
    assert isinstance(emb, HashEmbedder)
    assert emb.model.dim == 384


def test_load_embedder_rejects_an_unknown_name_listing_known_ones() -> None:
    with pytest.raises(InvalidArgument) as info:
        load_embedder("gpt-embeddings")
    message = str(info.value)
    assert "gpt-embeddings" in message
    for name in EMBEDDERS:
        assert name in message


def test_weights_check_accepts_the_pinned_hash_and_caches_it(tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights")
    expected = hashlib.sha256(b"weights").hexdigest()
    assert file_sha256(weights) == expected
    assert file_sha256(weights) == expected  # served from the per-process cache
    assert _verified_sha256(weights, expected.upper(), "m") == expected
    with pytest.raises(EmbedderError, match="expected") as info:
        _verified_sha256(weights, "00" * 32, "m")
    assert isinstance(info.value, MemnodeError)


def test_weights_check_rehashes_a_changed_file(tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"one")
    first = file_sha256(weights)
    weights.write_bytes(b"two, longer")
    os.utime(weights, ns=(1, 1))
    assert file_sha256(weights) != first


def test_weights_check_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="missing"):
        _verified_sha256(tmp_path / "absent.bin", "00" * 32, "m")

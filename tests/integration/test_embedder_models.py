"""The real embedders (fp32 sentence-transformers and int8 ONNX), offline.

Each model loads once per module. The import-hygiene tests run in subprocesses so
that what this test process has already imported does not hide a heavy import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

# The adapters force HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE before importing anything.
from memnode.embedders import (
    Embedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
)

HEAVY = ("torch", "sentence_transformers", "onnxruntime", "tokenizers", "transformers")
MODELS = ["minilm", "minilm-int8"]

SENTENCES = [
    "How do I reset my password?",
    "The quarterly report shows revenue grew by ten percent.",
    "Kubernetes restarts a pod when its liveness probe fails.",
    "She walked her dog along the beach at sunset.",
    "",
    "a",
]
LONG_TEXT = " ".join(
    f"sentence {i} talks about distributed databases and gossip." for i in range(80)
)


@pytest.fixture(scope="module")
def minilm() -> Iterator[Embedder]:
    yield load_embedder("minilm")


@pytest.fixture(scope="module")
def int8() -> Iterator[Embedder]:
    yield load_embedder("minilm-int8")


@pytest.fixture(params=MODELS)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return request.getfixturevalue({"minilm": "minilm", "minilm-int8": "int8"}[request.param])


def _run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_module_imports_no_model_library() -> None:
    got = _run(
        "import json, sys\n"
        "import memnode.embedders as e\n"
        "e.load_embedder('test-hash').embed(['hello world'])\n"
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    assert got["heavy"] == []


@pytest.mark.slow
def test_the_int8_embedder_does_not_import_torch() -> None:
    got = _run(
        "import json, sys\n"
        "from memnode.embedders import load_embedder\n"
        "load_embedder('minilm-int8').embed(['hello world'])\n"
        "print(json.dumps({'heavy': [m for m in ('torch', 'sentence_transformers', "
        "'transformers') if m in sys.modules]}))\n"
    )
    assert got["heavy"] == []


@pytest.mark.slow
def test_model_ids(minilm: Embedder, int8: Embedder) -> None:
    assert isinstance(minilm, SentenceTransformerEmbedder)
    assert isinstance(int8, OnnxEmbedder)
    assert (minilm.model.name, minilm.model.dim) == ("all-MiniLM-L6-v2", 384)
    assert (int8.model.name, int8.model.dim) == ("all-MiniLM-L6-v2-int8", 384)
    # The first 16 hex digits of the weights files' sha256.
    assert minilm.model.fingerprint == "53aa51172d142c89"
    assert int8.model.fingerprint == "8199be6f699a395f"
    assert minilm.model != int8.model


@pytest.mark.slow
def test_shape_dtype_layout_and_norm(embedder: Embedder) -> None:
    out = embedder.embed(SENTENCES)
    assert out.shape == (len(SENTENCES), 384)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_empty_input(embedder: Embedder) -> None:
    out = embedder.embed([])
    assert out.shape == (0, 384)
    assert out.dtype == np.float32


@pytest.mark.slow
def test_a_paraphrase_ranks_above_unrelated_sentences(embedder: Embedder) -> None:
    query, paraphrase, *unrelated = embedder.embed(
        [
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The weather in Paris is sunny today.",
            "Bananas are a good source of potassium.",
            "The train to Berlin leaves at nine.",
        ]
    )
    best_unrelated = max(float(query @ u) for u in unrelated)
    assert float(query @ paraphrase) > 0.6
    assert float(query @ paraphrase) > best_unrelated + 0.3


@pytest.mark.slow
def test_batching_and_padding_do_not_change_vectors(embedder: Embedder) -> None:
    # 150 texts of mixed lengths: more than one internal chunk of 64, reordered inside.
    texts = [SENTENCES[i % len(SENTENCES)] + " " + "word " * (i % 37) for i in range(150)]
    batch = embedder.embed(texts)
    for i in (0, 1, 63, 64, 100, 149):
        alone = embedder.embed([texts[i]])[0]
        assert float(batch[i] @ alone) > 0.9999


@pytest.mark.slow
def test_fp32_and_int8_agree(minilm: Embedder, int8: Embedder) -> None:
    texts = [*SENTENCES, LONG_TEXT]  # the long one checks both truncate at 256 tokens
    cos = np.sum(minilm.embed(texts) * int8.embed(texts), axis=1)
    assert cos.min() >= 0.99, cos


@pytest.mark.slow
def test_concurrent_calls_agree_with_serial_ones(embedder: Embedder) -> None:
    batches = [[f"{s} ({i})" for s in SENTENCES] for i in range(8)]
    serial = [embedder.embed(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(embedder.embed, batches))
    for s, p in zip(serial, parallel, strict=True):
        np.testing.assert_allclose(s, p, atol=1e-5)

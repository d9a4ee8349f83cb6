"""The recall-quality benchmark's measure (bench/recallq.py) on tiny data: exact search
against itself is 1.0, a truncated or wrong answer is less, a tie counts as found; and
one small end-to-end size through real nodes (own memories and replicas) with the
test-hash embedder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import recallq  # noqa: E402
from bench._textvec import TextVectors, distinct_texts, held_out  # noqa: E402
from memnode.embedders import HashEmbedder  # noqa: E402

K = 10


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    embedder = HashEmbedder()
    return embedder.embed(distinct_texts(11, 300)), embedder.embed(held_out(20, 300))


def test_exact_against_itself_is_one(data: tuple[np.ndarray, np.ndarray]) -> None:
    corpus, queries = data
    exact = recallq.exact_topk(corpus, queries, K)
    assert exact.shape == (20, K)
    sims = queries @ corpus.T
    assert np.allclose(np.take_along_axis(sims, exact, axis=1),
                       -np.sort(-sims, axis=1)[:, :K])  # really the k best, best first
    got = exact.tolist()
    assert recallq.recall_at_k(got, exact, K) == [1.0] * 20
    assert recallq.tied_recall_at_k(got, exact, K, corpus, queries, 1e-4) == [1.0] * 20


def test_a_truncated_or_wrong_answer_is_less(data: tuple[np.ndarray, np.ndarray]) -> None:
    corpus, queries = data
    exact = recallq.exact_topk(corpus, queries, K)
    truncated = [row[:7] for row in exact.tolist()]
    assert recallq.recall_at_k(truncated, exact, K) == [0.7] * 20
    worst = recallq.exact_topk(-corpus, queries, K).tolist()  # the least similar rows
    assert max(recallq.recall_at_k(worst, exact, K)) == 0.0
    assert max(recallq.tied_recall_at_k(worst, exact, K, corpus, queries, 1e-4)) == 0.0
    repeated = [[row[0]] * K for row in exact.tolist()]  # one hit ten times counts once
    assert recallq.tied_recall_at_k(repeated, exact, K, corpus, queries, 1e-4) == [0.1] * 20
    s = recallq.summary([1.0] * 19 + [0.5])
    assert s["median"] == 1.0 and s["p5"] < 1.0 and s["min"] == 0.5


def test_a_tie_at_the_kth_place_counts_as_found() -> None:
    rng = np.random.default_rng(3)
    corpus = rng.standard_normal((50, 8)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    query = corpus[:1].copy()
    exact = recallq.exact_topk(corpus, query, K)
    twin = np.vstack([corpus, corpus[exact[0, K - 1]]])  # row 50: a duplicate of the k-th
    got = [[*exact[0, : K - 1].tolist(), 50]]
    assert recallq.recall_at_k(got, exact, K) == [0.9]
    assert recallq.tied_recall_at_k(got, exact, K, twin, query, 1e-4) == [1.0]


def test_one_small_size_through_real_nodes(tmp_path: Path) -> None:
    tv = TextVectors(HashEmbedder(), root=tmp_path / "cache", hold_out_of=10_000)
    queries = tv.queries(20)
    args = argparse.Namespace(k=K, eps=1e-4, variant=["ef_search=50"])
    out = recallq.one_size(300, tv, queries, args, tmp_path / "work")
    assert out["load"]["replicas"]["events"] == 300
    row = out["default"]
    assert set(row) == {"hnsw", "node_local", "node_mesh", "raw_local", "raw_replicas"}
    for name in ("node_local", "node_mesh", "raw_local", "raw_replicas"):
        assert row[name]["recall"]["median"] == 1.0, (name, row[name])
        assert row[name]["recall"]["p5"] >= 0.9, (name, row[name])
    [variant] = out["variants"]
    assert variant["hnsw"]["ef_search"] == 50 and variant["raw"]["recall"]["median"] == 1.0
    assert tv.embedded == 10_000 + 20  # one cached chunk of the corpus, the queries
    again = TextVectors(HashEmbedder(), root=tmp_path / "cache", hold_out_of=10_000)
    assert np.array_equal(again.corpus(300), tv.corpus(300)) and again.embedded == 0

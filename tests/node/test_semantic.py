"""The real default model end to end: a paraphrased question finds the right memory first."""

from __future__ import annotations

import pytest

from helpers import NodeHandle

MEMORIES = [
    "The staging database is backed up every night at 02:00 UTC.",
    "Deploys are frozen on Fridays after 15:00.",
    "Ana prefers code reviews in the morning.",
    "The payment service retries failed webhooks five times with exponential backoff.",
    "Our office plants are watered on Mondays by the facilities team.",
    "The VPN certificate expires in March and must be renewed by the security team.",
    "Customer support answers tickets within four business hours.",
    "The mobile app crashes on Android 12 when the camera permission is denied.",
]
PARAPHRASES = {
    "when do we take snapshots of the staging DB?": 0,
    "are deployments allowed on Friday afternoons?": 1,
    "how many times is a failing webhook delivery attempted again?": 3,
    "who renews the VPN cert and when does it run out?": 5,
    "what is the response time for support requests?": 6,
}


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    from memnode.embedders import load_embedder

    return load_embedder("minilm")


@pytest.mark.slow
def test_paraphrased_query_ranks_the_right_memory_first(node_factory, minilm) -> None:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("semantic", embedder=minilm)
    status = handle.client.status()
    assert status.model["name"] == "all-MiniLM-L6-v2" and status.model["dim"] == 384
    assert status.model["fingerprint"].startswith("53aa5117")
    ids = [handle.client.remember(text) for text in MEMORIES]
    for query, expected in PARAPHRASES.items():
        hits = handle.client.recall(query, k=3)
        assert hits[0].id == ids[expected], (query, [h.text for h in hits])
        assert hits[0].score > hits[1].score

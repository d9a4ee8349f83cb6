"""LangChain's standard VectorStore tests, unmodified, against real nodes.

Run twice: with the node embedding texts and queries itself (the default, and the way
to use a mesh), and with the adapter carrying the suite's own 6-dimensional embeddings
to a node whose test embedder has 6 dimensions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_tests", reason="the agents extra is not installed")

from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests.vectorstores import (  # noqa: E402
    EMBEDDING_SIZE,
    VectorStoreIntegrationTests,
)

from memnode.embedders import HashEmbedder  # noqa: E402
from memnode.integrations.langchain import MemnodeVectorStore  # noqa: E402


class TestNodeEmbeds(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, node_factory) -> Iterator[VectorStore]:  # type: ignore[no-untyped-def]
        """A fresh node (empty), whose own test embedder embeds texts and queries."""
        store = MemnodeVectorStore(node_factory("lc").client)
        assert store.embeddings is None
        yield store


class TestCallerEmbeddings(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, node_factory) -> Iterator[VectorStore]:  # type: ignore[no-untyped-def]
        """A fresh node with a 6-dimensional embedder; the suite's embeddings are sent."""
        node = node_factory("lc6", embedder=HashEmbedder(dim=EMBEDDING_SIZE))
        assert node.client.status().model["dim"] == EMBEDDING_SIZE
        yield MemnodeVectorStore(node.client, self.get_embeddings())

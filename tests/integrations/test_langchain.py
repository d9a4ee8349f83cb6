"""MemnodeVectorStore beyond the standard suite: ids, metadata, caller vectors, the mesh."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core", reason="the agents extra is not installed")
pytest.importorskip("pytest_asyncio", reason="the agents extra is not installed")

from langchain_core.embeddings import Embeddings  # noqa: E402

from memnode.embedders import HashEmbedder  # noqa: E402
from memnode.errors import InvalidArgument, NotFound  # noqa: E402
from memnode.integrations.langchain import (  # noqa: E402
    LC_ID_KEY,
    MEMNODE_ID_KEY,
    ORIGIN_KEY,
    PRIVACY_KEY,
    MemnodeVectorStore,
)

from helpers import NodeHandle, wait_for  # noqa: E402


class TableEmbeddings(Embeddings):
    """Fixed 6-dimensional vectors by text: nearness no word-hashing model would give."""

    TABLE = {"apple": [1, 0, 0, 0, 0, 0], "pear": [0, 1, 0, 0, 0, 0],
             "plum": [0, 0, 1, 0, 0, 0], "zzz": [0.9, 0.1, 0, 0, 0, 0]}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in self.TABLE[t]] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_caller_vectors_are_what_the_node_searches(node_factory) -> None:  # type: ignore[no-untyped-def]
    node: NodeHandle = node_factory("six", embedder=HashEmbedder(dim=6))
    store = MemnodeVectorStore(node.client, TableEmbeddings())
    store.add_texts(["apple", "pear", "plum"], ids=["a", "p", "l"])
    assert [d.id for d in store.similarity_search("zzz", k=2)] == ["a", "p"]
    assert [d.page_content for d in store.similarity_search_by_vector([0, 0, 1, 0, 0, 0], 1)] \
        == ["plum"]

    wide: NodeHandle = node_factory("wide")  # the test embedder's default 384 dimensions
    with pytest.raises(InvalidArgument, match="6 dimensions; this node's model has 384"):
        MemnodeVectorStore(wide.client, TableEmbeddings()).add_texts(["apple"])


def test_metadata_round_trips_typed_and_non_flat_values_are_refused(node: NodeHandle) -> None:
    store = MemnodeVectorStore(node.client)
    meta = {"s": "x", "i": -7, "big": 2**62, "f": 2.5, "yes": True, "no": False}
    (doc_id,) = store.add_texts(["typed metadata"], [meta])
    (doc,) = store.get_by_ids([doc_id])
    assert doc.metadata == meta
    assert [type(doc.metadata[k]) for k in meta] == [str, int, int, float, bool, bool]
    for bad in ({"nested": {"a": 1}}, {"list": [1]}, {"none": None}, {LC_ID_KEY: "mine"},
                {"_reserved": 1}, {"huge": 2**70}):
        with pytest.raises(InvalidArgument):
            store.add_texts(["refused"], [bad])
    assert [m.text for m in node.client.list()] == ["typed metadata"]


def test_ids_live_in_metadata_and_memnode_ids_work_too(node: NodeHandle) -> None:
    store = MemnodeVectorStore(node.client)
    assert store.add_texts(["first draft"], [{"v": 1}], ids=["doc-1"]) == ["doc-1"]
    (first,) = list(node.client.list())
    assert first.metadata == {"v": 1, LC_ID_KEY: "doc-1"} and first.text == "first draft"

    store.add_texts(["second draft"], [{"v": 2}], ids=["doc-1"])  # an upsert
    (second,) = list(node.client.list())
    assert second.id != first.id and second.text == "second draft"
    with pytest.raises(NotFound):
        node.client.get(first.id)
    assert [(d.id, d.page_content) for d in store.get_by_ids(["doc-1"])] \
        == [("doc-1", "second draft")]

    outside = node.client.remember("written by the cli", {"v": 3})  # no LangChain id
    (hit,) = store.similarity_search("written by the cli", k=1, filter={"v": 3})
    assert hit.id == outside and hit.metadata == {"v": 3}
    assert [d.id for d in store.get_by_ids([outside, "no/such-memory"])] == [outside]
    store.delete([outside, "never-written"])
    with pytest.raises(NotFound):
        node.client.get(outside)
    with pytest.raises(InvalidArgument):
        store.delete(None)
    with pytest.raises(InvalidArgument, match="twice"):
        store.add_texts(["x", "y"], ids=["same", "same"])


def test_mesh_scope_returns_other_nodes_memories_without_text(node_factory) -> None:  # type: ignore[no-untyped-def]
    a: NodeHandle = node_factory("a", peers=[])
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address])
    MemnodeVectorStore(a.client).add_texts(["the deploy key rotates on fridays"],
                                           [{"team": "ops"}], ids=["rota"])
    MemnodeVectorStore(a.client, privacy="public").add_texts(
        ["the deploy window opens on mondays"], [{"team": "ops"}], ids=["window"])
    wait_for(lambda: b.client.status().memories["replicated"] == 2,
             "both of a's memories to replicate to b")
    origin = a.client.status().node_id

    on_b = MemnodeVectorStore(b.client, scope="mesh")
    assert MemnodeVectorStore(b.client).similarity_search("deploy key", k=2) == []
    docs = on_b.similarity_search("the deploy key rotates on fridays", k=2,
                                  filter={"team": "ops"})  # TEAM matches via the keyed hash
    assert len(docs) == 2 and all(d.page_content == "" for d in docs)
    team, public = docs
    for doc in docs:
        assert doc.metadata[ORIGIN_KEY] == origin
        assert doc.id == doc.metadata[MEMNODE_ID_KEY] and doc.id.startswith(origin)
        assert LC_ID_KEY not in doc.metadata
    assert team.metadata[PRIVACY_KEY] == "team" and team.metadata["team"] != "ops"
    assert public.metadata[PRIVACY_KEY] == "public" and public.metadata["team"] == "ops"
    assert team.id is not None
    (fetched,) = on_b.get_by_ids([team.id])
    assert fetched.page_content == "" and fetched.metadata[ORIGIN_KEY] == origin
    assert [d.page_content for d in MemnodeVectorStore(a.client).get_by_ids(["rota"])] \
        == ["the deploy key rotates on fridays"]


async def test_retriever_filter_relevance_and_from_texts(node: NodeHandle) -> None:
    store = MemnodeVectorStore.from_texts(
        ["ops rotate the deploy key", "ops patch the servers", "dev ships the release"],
        None, [{"team": "ops"}, {"team": "ops"}, {"team": "dev"}], client=node.addr)
    try:
        retriever = store.as_retriever(search_kwargs={"k": 3, "filter": {"team": "ops"}})
        docs = retriever.invoke("rotate the deploy key")
        assert [d.page_content for d in docs] == ["ops rotate the deploy key",
                                                  "ops patch the servers"]
        filtered = await retriever.ainvoke("dev ships the release")
        assert sorted(d.page_content for d in filtered) == ["ops patch the servers",
                                                            "ops rotate the deploy key"]
        scored = store.similarity_search_with_relevance_scores("dev ships the release", k=3)
        assert scored[0][0].page_content == "dev ships the release"
        assert scored[0][1] == pytest.approx(1.0, abs=1e-5)
        assert all(0.0 <= s <= 1.0 for _, s in scored)
        found = await store.asimilarity_search_with_score("patch the servers", k=1)
        assert found[0][0].page_content == "ops patch the servers" and found[0][1] > 0.5
    finally:
        store.close()

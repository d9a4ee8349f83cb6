"""A LangChain vector store over a memnode node (``pip install memnode[agents]``).

    from memnode.integrations.langchain import MemnodeVectorStore
    store = MemnodeVectorStore("127.0.0.1:7420")
    store.add_texts(["the deploy key rotates on Fridays"], [{"team": "ops"}], ids=["rota"])
    docs = store.similarity_search("when do keys rotate?", k=3, scope="mesh")
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from memnode import Client, Hit, Memory, NewMemory
from memnode.errors import InvalidArgument, NotFound

__all__ = ["MemnodeVectorStore", "LC_ID_KEY", "ORIGIN_KEY", "MEMNODE_ID_KEY", "PRIVACY_KEY"]

#: The metadata key that carries a document's LangChain id on the node.
LC_ID_KEY = "lc_id"
#: Keys added to the metadata of other nodes' memories (mesh-scope hits).
ORIGIN_KEY = "memnode_origin"
MEMNODE_ID_KEY = "memnode_id"
PRIVACY_KEY = "memnode_privacy"
#: Most memories one LangChain id is looked up among (only a crash mid-upsert, or two
#: writers racing on one id, leaves more than one).
LOOKUP_K = 64
#: Memories per RememberBatch call (each batch is atomic on the node).
BATCH = 256


class MemnodeVectorStore(VectorStore):
    """LangChain ``VectorStore`` over :class:`memnode.Client`: one node's memories, and
    with ``scope="mesh"`` the replicas of the mesh's memories that this node holds.

    **Embeddings.** With ``embedding=None`` (the default) the node embeds texts and
    queries with its own model. That is the mode to use on a mesh: every vector there
    comes from one model, whose identity travels with it, and the node embeds the text
    *after* redacting PII. With ``embedding=`` a LangChain :class:`Embeddings`, the
    adapter embeds documents and queries itself and sends the float32 vectors with the
    text (``RememberRequest.embedding``, ``RecallRequest.embedding``), declaring them as
    the node's model (``embedding_model``, read once from the node's status): the caller
    vouches that they come from that model, since team and public memories replicate
    under the node's model identity, and they are computed on the unredacted text. The
    node checks the declaration and the dimension (an error names both). Use it with the
    node's own model, or on
    a node whose embedder has the caller's dimension (the standard LangChain tests run
    this way against a node with a 6-dimensional test embedder).

    **Ids.** The node assigns memory ids (``<origin>/<suffix>``) and accepts none from
    callers. So every document written here carries its LangChain id (the caller's, or
    a new UUID4) in the metadata key ``lc_id``, and ``Document.id`` is that id. An id is
    resolved by a local recall filtered on ``lc_id`` (an exact equality match over this
    node's own memories, one round trip per id). Adding a document whose id exists
    writes the new memory, then forgets the old one (the node's memories are immutable
    apart from metadata): a crash in between leaves both, and the next add or delete of
    that id removes the extra. Ids are per node: the same id on two nodes names two
    documents. Memories not written through this class (CLI, MCP, other clients) have
    ``Document.id`` = their memnode id, and ``get_by_ids`` / ``delete`` accept memnode
    ids too.

    **Metadata.** Values must be ``str``, ``int`` (64-bit), ``float`` (finite) or
    ``bool``, and come back with the same type; keys must be non-empty and not start
    with ``_``, and ``lc_id`` is taken. Nested values, lists and ``None`` are refused with
    :class:`~memnode.errors.InvalidArgument` (flatten them, or ``json.dumps`` them into a
    string). The node's limits apply (64 keys; value size). ``filter=`` in searches is
    exact equality on every given key.

    **Mesh scope.** ``similarity_search(..., scope="mesh")`` also returns other nodes'
    memories as documents with empty ``page_content`` (their text never leaves their
    origin), ``id`` = the memnode id, and metadata naming ``memnode_origin`` (the origin
    node), ``memnode_id`` and ``memnode_privacy``; for ``team`` memories their other
    metadata values are keyed hashes.

    **Scores.** ``similarity_search_with_score`` gives cosine similarity (higher is
    closer); the relevance score is that similarity clipped to [0, 1]. The async
    variants are LangChain's defaults: the blocking gRPC calls run in the default
    executor. Text goes through the node's PII redaction unless ``keep_pii=True``.
    """

    def __init__(self, client: Client | str | None = None, embedding: Embeddings | None = None,
                 *, privacy: str = "team", scope: str = "local", keep_pii: bool = False,
                 timeout: float = 30.0) -> None:
        if scope not in ("local", "mesh"):
            raise InvalidArgument(f"unknown scope {scope!r} (local, mesh)")
        self._owns_client = not isinstance(client, Client)
        self.client = client if isinstance(client, Client) else Client(client, timeout=timeout)
        self._embedding = embedding
        self.privacy = privacy
        self.scope = scope
        self.keep_pii = keep_pii
        self._node_model: dict[str, Any] | None = None

    def close(self) -> None:
        """Close the client if this store made it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> MemnodeVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    # -- writes ----------------------------------------------------------------------

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None,
                  *, ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Write ``texts`` (upserting by id); returns their LangChain ids in order."""
        items = list(texts)
        if metadatas is not None and len(metadatas) != len(items):
            raise InvalidArgument(f"{len(metadatas)} metadatas for {len(items)} texts")
        if ids is not None and len(ids) != len(items):
            raise InvalidArgument(f"{len(ids)} ids for {len(items)} texts")
        given = list(ids) if ids is not None else [None] * len(items)
        lc_ids = [i if i else str(uuid.uuid4()) for i in given]
        if len(set(lc_ids)) != len(lc_ids):
            raise InvalidArgument("the same id appears twice in one add")
        if not items:
            return []
        vectors = self._embed_documents(items)
        model = self._declared_model()
        new = [
            NewMemory(text, _to_node_metadata(meta, lc_id), self.privacy, self.keep_pii,
                      embedding=vec, embedding_model=model if vec else None)
            for text, meta, lc_id, vec in zip(
                items, metadatas or [{}] * len(items), lc_ids, vectors, strict=True)
        ]
        replaced = [h.id for lc_id in {i for i in given if i} for h in self._lookup(lc_id)]
        written: list[str] = []
        for start in range(0, len(new), BATCH):
            written += self.client.remember_batch(new[start : start + BATCH])
        kept = set(written)
        self._forget(m for m in replaced if m not in kept)
        return lc_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Forget the documents with these ids (LangChain or memnode ids); unknown ids are
        skipped. ``ids=None`` is refused: this store does not wipe a node."""
        if ids is None:
            raise InvalidArgument("delete() needs ids; memnode does not delete everything")
        self._forget(mid for i in ids for mid in self._resolve(i))
        return True

    # -- reads -----------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        docs: list[Document] = []
        for doc_id in dict.fromkeys(ids):
            hits = self._lookup(doc_id)
            if hits:
                docs += [_document(h) for h in hits]
            elif _is_memnode_id(doc_id):
                with contextlib.suppress(NotFound):
                    docs.append(_memory_document(self.client.get(doc_id)))
        return docs

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, *, filter: Mapping[str, Any] | None = None,
        scope: str | None = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents with their cosine similarity. ``filter``: metadata
        equality; ``scope``: "local" or "mesh" (default: the store's)."""
        vector = b"" if self._embedding is None else _f32(self._embedding.embed_query(query))
        return self._search(query, k, filter, scope, vector)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    **kwargs: Any) -> list[Document]:
        """Search by a query vector of the node's model dimension."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(
            embedding, k, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, *, filter: Mapping[str, Any] | None = None,
        scope: str | None = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        return self._search("", k, filter, scope, _f32(embedding))

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, client: Client | str | None = None,
                   **kwargs: Any) -> MemnodeVectorStore:
        """A store over ``client`` (a Client or an address) holding ``texts``. Pass
        ``embedding=None`` to let the node embed (see the class notes)."""
        store = cls(client, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # -- internals -------------------------------------------------------------------

    def _search(self, query: str, k: int, where: Mapping[str, Any] | None,
                scope: str | None, vector: bytes) -> list[tuple[Document, float]]:
        if k < 1:
            raise InvalidArgument(f"k must be >= 1, got {k}")
        hits = self.client.recall(query, k, scope=scope or self.scope, where=dict(where or {}),
                                  embedding=vector)
        return [(_document(h), float(h.score)) for h in hits]

    def _declared_model(self) -> dict[str, Any] | None:
        """The node's model, which the caller's embeddings are declared as (None when
        the node embeds)."""
        if self._embedding is None:
            return None
        if self._node_model is None:
            self._node_model = dict(self.client.status().model)
        return self._node_model

    def _embed_documents(self, texts: list[str]) -> list[bytes]:
        if self._embedding is None:
            return [b""] * len(texts)
        return [_f32(v) for v in self._embedding.embed_documents(texts)]

    def _lookup(self, lc_id: str) -> list[Hit]:
        """This node's own memories whose ``lc_id`` is ``lc_id`` (exact match)."""
        return self.client.recall(f"id {lc_id}", LOOKUP_K, scope="local",
                                  where={LC_ID_KEY: lc_id})

    def _resolve(self, doc_id: str) -> list[str]:
        """Memnode ids for a LangChain id, else the id itself if it is a memnode id."""
        found = [h.id for h in self._lookup(doc_id)]
        return found or ([doc_id] if _is_memnode_id(doc_id) else [])

    def _forget(self, memnode_ids: Iterable[str]) -> None:
        for mid in dict.fromkeys(memnode_ids):
            with contextlib.suppress(NotFound):  # already gone: the wanted end state
                self.client.forget(mid)


def _to_node_metadata(meta: Mapping[str, Any], lc_id: str) -> dict[str, Any]:
    if LC_ID_KEY in meta:
        raise InvalidArgument(f"metadata key {LC_ID_KEY!r} is reserved for the document id")
    for key, value in meta.items():
        if not isinstance(value, str | int | float | bool):
            raise InvalidArgument(
                f"metadata {key!r}: {type(value).__name__} is not a str, int, float or bool "
                "value (memnode metadata is flat: flatten it or json.dumps it)")
    return {**meta, LC_ID_KEY: lc_id}


def _document(hit: Hit) -> Document:
    meta = dict(hit.metadata)
    lc_id = meta.pop(LC_ID_KEY, None)
    if hit.local:
        return Document(id=str(lc_id) if lc_id is not None else hit.id, page_content=hit.text,
                        metadata=meta)
    return _remote(hit.id, hit.origin, hit.privacy, meta)


def _memory_document(m: Memory) -> Document:
    meta = dict(m.metadata)
    lc_id = meta.pop(LC_ID_KEY, None)
    if m.local:
        return Document(id=str(lc_id) if lc_id is not None else m.id, page_content=m.text,
                        metadata=meta)
    return _remote(m.id, m.origin, m.privacy, meta)


def _remote(mid: str, origin: str, privacy: str, meta: dict[str, Any]) -> Document:
    meta.update({ORIGIN_KEY: origin, MEMNODE_ID_KEY: mid, PRIVACY_KEY: privacy})
    return Document(id=mid, page_content="", metadata=meta)


def _is_memnode_id(value: str) -> bool:
    origin, sep, suffix = value.partition("/")
    return bool(sep and origin and suffix)


def _f32(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _relevance(score: float) -> float:
    return max(0.0, min(1.0, score))

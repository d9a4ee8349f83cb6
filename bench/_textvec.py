"""Text embeddings for the recall-quality benchmark, cached on disk.

The corpus is the distinct texts of :func:`bench._corpus.record` (1-3 template
sentences of agent memories with varied names, services, numbers and reasons), in the
order a seed generates them, repeats skipped; queries are texts of another seed from
the same generator that are not in the corpus (held out). Vectors
come from a real embedder (default ``minilm``, the node's default) and are cached in
chunks of :data:`CHUNK` under ``~/.cache/memnode-bench/textvec`` (``MEMNODE_BENCH_CACHE``
overrides), keyed by model fingerprint, seed and chunk index, so that growing a size or
rerunning embeds nothing twice. A chunk is written to a temporary name and renamed:
an interrupted run leaves no half file.

    python -m bench._textvec --n 100000 [--embedder minilm]   # fill the cache only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import _corpus as corpus

CHUNK = 10_000
CORPUS_SEED, QUERY_SEED = 11, 12
MAX_CORPUS = 200_000  # queries are held out of this many corpus texts
Vectors = npt.NDArray[np.float32]


def cache_dir() -> Path:
    env = os.environ.get("MEMNODE_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "memnode-bench" / "textvec"


def distinct_texts(seed: int, n: int) -> list[str]:
    """The first ``n`` distinct texts of seed ``seed`` (a pure function of both)."""
    seen: dict[str, None] = {}
    i = 0
    while len(seen) < n:
        seen.setdefault(corpus.record(seed, i)[0], None)
        i += 1
    return list(seen)


def held_out(n: int, corpus_size: int = MAX_CORPUS) -> list[str]:
    """``n`` distinct query texts, none of them in the first ``corpus_size`` corpus texts."""
    taken = set(distinct_texts(CORPUS_SEED, corpus_size))
    out: dict[str, None] = {}
    i = 0
    while len(out) < n:
        text = corpus.record(QUERY_SEED, i)[0]
        if text not in taken:
            out.setdefault(text, None)
        i += 1
    return list(out)


class TextVectors:
    """Vectors of the corpus and of the queries of one embedder, cached."""

    def __init__(self, embedder: Any, root: Path | None = None,
                 say: Any = None, hold_out_of: int = MAX_CORPUS) -> None:
        self.embedder = embedder
        self.hold_out_of = hold_out_of
        model = embedder.model
        self.root = (root or cache_dir()) / f"{model.name}-{model.fingerprint}"
        self.root.mkdir(parents=True, exist_ok=True)
        self._say = say or (lambda _msg: None)
        self.embed_seconds = 0.0
        self.embedded = 0

    def _cached(self, name: str, make: Any) -> Vectors:
        path = self.root / f"{name}.npy"
        if path.is_file():
            return np.load(path)
        items = make()
        t = time.perf_counter()
        vectors = np.ascontiguousarray(self.embedder.embed(items), dtype=np.float32)
        took = time.perf_counter() - t
        self.embed_seconds += took
        self.embedded += len(items)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
        self._say(f"embedded {len(items)} texts ({name}) at {len(items) / took:.0f}/s")
        return vectors

    def texts(self, n: int) -> list[str]:
        return distinct_texts(CORPUS_SEED, n)

    def corpus(self, n: int) -> Vectors:
        """The vectors of :meth:`texts` ``(n)``."""
        chunks = -(-n // CHUNK)
        every: list[str] = []

        def chunk(c: int) -> Any:
            def make() -> list[str]:
                if not every:
                    every.extend(distinct_texts(CORPUS_SEED, chunks * CHUNK))
                return every[c * CHUNK:(c + 1) * CHUNK]
            return make

        return np.concatenate([self._cached(f"corpus-s{CORPUS_SEED}-c{c}-n{CHUNK}", chunk(c))
                               for c in range(chunks)])[:n]

    def queries(self, n: int) -> Vectors:
        """Vectors of :func:`held_out` ``(n)``."""
        return self._cached(f"queries-s{QUERY_SEED}-n{n}-of{self.hold_out_of}",
                            lambda: held_out(n, self.hold_out_of))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._textvec")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args(argv)
    from memnode.embedders import load_embedder

    tv = TextVectors(load_embedder(args.embedder),
                     say=lambda m: print(m, file=sys.stderr, flush=True))
    print(tv.queries(args.queries).shape, tv.corpus(args.n).shape, tv.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

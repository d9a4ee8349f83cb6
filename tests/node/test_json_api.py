"""The gRPC API for JSON tools: plain-text Remember, reflection v1 and v1alpha, scores in
[-1, 1]; driven by real third-party tools (buf curl, promtool) where they are installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2 as rpb

from memnode.node.domain import cosine_score

from helpers import NodeHandle

BUF = shutil.which("buf") or next(
    (str(p) for p in [Path(sys.executable).with_name("buf")] if p.exists()), None)
PROMTOOL = shutil.which("promtool")


def _buf(tmp: Path, addr: str, method: str, body: dict[str, object], protocol: str
         ) -> dict[str, object]:
    assert BUF is not None
    run = subprocess.run(
        [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
         "--reflect-protocol", protocol, "-d", json.dumps(body),
         f"http://{addr}/memnode.v1.MemoryService/{method}"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "BUF_CACHE_DIR": str(tmp / "buf-cache")})
    assert run.returncode == 0, run.stderr
    out: dict[str, object] = json.loads(run.stdout)
    return out


@pytest.mark.skipif(BUF is None, reason="buf is not installed (pip install buf-bin)")
def test_buf_curl_remembers_and_recalls_plain_json_over_reflection(
        node: NodeHandle, tmp_path: Path) -> None:
    text = "the deploy key rotates on Fridays"
    stored = _buf(tmp_path, node.addr, "Remember", {"text": text, "metadata": {
        "team": {"s": "ops"}}}, "grpc-v1")
    assert node.client.get(str(stored["id"])).text == text
    found = _buf(tmp_path, node.addr, "Recall", {"query": text, "k": 3}, "grpc-v1alpha")
    hits = found["hits"]
    assert isinstance(hits, list) and hits[0]["id"] == stored["id"]
    assert hits[0]["text"] == text and hits[0]["metadata"] == {"team": {"s": "ops"}}
    assert -1.0 <= hits[0]["score"] <= 1.0


@pytest.mark.parametrize("service", ["grpc.reflection.v1", "grpc.reflection.v1alpha"])
def test_reflection_answers_under_v1_and_v1alpha(node: NodeHandle, service: str) -> None:
    call = grpc.insecure_channel(node.addr).stream_stream(
        f"/{service}.ServerReflection/ServerReflectionInfo",
        request_serializer=rpb.ServerReflectionRequest.SerializeToString,
        response_deserializer=rpb.ServerReflectionResponse.FromString)
    requests = [rpb.ServerReflectionRequest(list_services=""),
                rpb.ServerReflectionRequest(file_containing_symbol="memnode.v1.MemoryService"),
                rpb.ServerReflectionRequest(file_containing_symbol=f"{service}.ServerReflection")]
    listed, memnode, itself = list(call(iter(requests), timeout=10))
    names = {s.name for s in listed.list_services_response.service}
    assert {"memnode.v1.MemoryService", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names
    from google.protobuf import descriptor_pb2

    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in memnode.file_descriptor_response.file_descriptor_proto]
    text_field = next(f for m in files if m.package == "memnode.v1" for t in m.message_type
                      if t.name == "RememberRequest" for f in t.field if f.name == "text")
    assert text_field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    own = descriptor_pb2.FileDescriptorProto.FromString(
        itself.file_descriptor_response.file_descriptor_proto[0])
    assert own.package == service and own.service[0].name == "ServerReflection"


def _over_one(dim: int) -> np.ndarray:
    """A unit vector (float32) whose dot product with itself rounds above 1."""
    rng = np.random.default_rng(7)
    for _ in range(1000):
        v = rng.standard_normal(dim).astype(np.float32)
        v /= np.linalg.norm(v)
        if float(v @ v) > 1.0:
            return v
    raise AssertionError("no vector found")


def test_scores_stay_within_minus_one_and_one(node: NodeHandle) -> None:
    assert (cosine_score(1.0000001), cosine_score(-1.2), cosine_score(0.5)) == (1.0, -1.0, 0.5)
    vec = _over_one(node.node.model.dim)
    raw = vec.astype("<f4").tobytes()
    node.client.remember("self", embedding=raw, privacy="ephemeral")
    model = node.client.status().model
    node.client.remember("self too", embedding=raw, embedding_model=model)
    node.client.remember("opposite", embedding=(-vec).astype("<f4").tobytes(),
                         embedding_model=model)
    hits = node.client.recall("", embedding=raw, scope="mesh")
    assert len(hits) == 3 and all(-1.0 <= h.score <= 1.0 for h in hits)
    assert max(h.score for h in hits) == 1.0


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get "
                    "install prometheus)")
def test_promtool_accepts_the_metrics_exposition(node_factory) -> None:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("prom", peers=[], metrics_listen="127.0.0.1:0")
    handle.client.remember("counted")
    url = f"http://127.0.0.1:{handle.server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        exposition = r.read()
    assert b"memnode_federation_events_applied_total" in exposition
    assert PROMTOOL is not None
    run = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, (run.stdout + run.stderr).decode()

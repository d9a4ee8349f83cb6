"""The deny list signed by the federation CA: signing, verification, adoption, files."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from federation.errors import CredentialsError
from federation.io.denylist import DenyList, add_to_deny_list, load_deny_list
from federation.io.denysign import (
    DenyListRejected,
    deny_in_federation,
    load_ca_public_key,
    read_signed,
    sign,
    verify,
)
from federation.io.pki import _load_ca, init_federation, issue_node


@pytest.fixture(scope="module")
def feds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Our federation, a member's directory, and another federation."""
    root = tmp_path_factory.mktemp("feds")
    init_federation(root / "fed")
    init_federation(root / "other")
    return root / "fed", issue_node(root / "fed", "a", root / "node-a"), root / "other"


def _copy(dir: Path, to: Path) -> Path:
    shutil.copytree(dir, to)
    return to


def _tampered(payload: bytes, **changes: object) -> bytes:
    doc = json.loads(payload)
    doc.update(changes)
    return json.dumps(doc).encode()


def test_deny_signs_a_new_version_and_writes_both_files(tmp_path: Path,
                                                         feds: tuple[Path, Path, Path]) -> None:
    fed = _copy(feds[0], tmp_path / "fed")
    (fed / "denied.txt").write_text("# old plain entries\nold-laptop\n")
    first = deny_in_federation(fed, "node-x", now_ms=1000)
    assert first is not None and first.version == 1000
    assert first.entries == {"old-laptop", "node-x"}  # the unsigned list is taken in
    assert deny_in_federation(fed, "node-x") is None  # already there: no new version
    second = deny_in_federation(fed, "node-y", now_ms=5)  # the clock went back
    assert second is not None and second.version == 1001
    signed = read_signed(fed, load_ca_public_key(fed))
    assert signed is not None and signed.entries == {"old-laptop", "node-x", "node-y"}
    assert load_deny_list(fed) == signed.entries  # denied.txt says the same, to read
    assert "version 1001" in (fed / "denied.txt").read_text()
    assert add_to_deny_list(fed, "node-z")  # the CLI's entry point signs too
    assert "node-z" in verify((fed / "denied.signed").read_bytes(), load_ca_public_key(fed)
                              ).entries
    issued = issue_node(fed, "b", tmp_path / "node-b")
    assert (issued / "denied.signed").read_bytes() == (fed / "denied.signed").read_bytes()


def test_only_a_list_signed_by_our_ca_verifies(feds: tuple[Path, Path, Path]) -> None:
    fed, node, other = feds
    ours = load_ca_public_key(node)
    key, _ = _load_ca(fed)
    other_key, _ = _load_ca(other)
    good = sign(7, frozenset({"node-x"}), key)
    assert verify(good, ours).entries == {"node-x"}
    bad = {
        "another CA": sign(7, frozenset({"node-x"}), other_key),
        "entry added": _tampered(good, entries=["node-x", "node-a"]),
        "version raised": _tampered(good, version=8),
        "unsigned": _tampered(good, signature=""),
        "garbage signature": _tampered(good, signature="!!!"),
        "not json": b"\xff\x00 nope",
        "wrong format": _tampered(good, format="v0"),
        "bad version": _tampered(good, version=-1),
        "bad entries": _tampered(good, entries="node-x"),
        "bad entry": _tampered(good, entries=["two words"]),
        "too large": b" " * (2 << 20),
    }
    for what, payload in bad.items():
        with pytest.raises(DenyListRejected):
            verify(payload, ours)
        assert isinstance(DenyListRejected("x"), CredentialsError), what


def test_deny_list_adopts_newer_lists_and_counts_rejections(
        tmp_path: Path, feds: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    fed, node, other = feds
    node = _copy(node, tmp_path / "n")
    key, _ = _load_ca(fed)
    other_key, _ = _load_ca(other)
    clock = [0.0]
    deny = DenyList(node, check_every=2.0, clock=lambda: clock[0])
    assert deny.version == 0 and deny.payload is None and "node-x" not in deny
    assert deny.offer(sign(10, frozenset({"node-x"}), key), "peer p")
    assert deny.version == 10 and "node-x" in deny
    assert not deny.offer(sign(9, frozenset({"node-y"}), key), "peer p")  # older: ignored
    assert deny.rejected == 0 and "node-y" not in deny
    caplog.set_level(logging.DEBUG, "memnode.federation.deny")
    forged = sign(99, frozenset({"node-a"}), other_key)
    for _ in range(3):
        assert not deny.offer(forged, "peer mallory")
    assert deny.rejected == 3 and "node-a" not in deny and deny.version == 10
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "peer mallory" in warnings[0].getMessage()
    # A signed file copied in by an admin is read at the next look, and the local
    # unsigned denied.txt adds to the signed entries.
    (node / "denied.signed").write_bytes(sign(20, frozenset({"node-z"}), key))
    (node / "denied.txt").write_text("local-only\n")
    assert "node-z" not in deny
    clock[0] = 2.0
    assert deny.entries() == {"node-z", "local-only"} and deny.version == 20
    (node / "denied.signed").write_bytes(_tampered(deny.payload or b"", entries=[]))
    clock[0] = 4.0
    assert "node-z" in deny and deny.rejected == 4  # a tampered file: the list stays


def test_a_node_starts_with_the_signed_file_it_holds(tmp_path: Path,
                                                      feds: tuple[Path, Path, Path]) -> None:
    fed, node, other = feds
    node = _copy(node, tmp_path / "n")
    key, _ = _load_ca(other)
    (node / "denied.signed").write_bytes(sign(5, frozenset({"node-x"}), key))
    deny = DenyList(node)  # a foreign list at start: rejected, counted, not fatal
    assert deny.rejected == 1 and deny.version == 0
    fed_key, _ = _load_ca(fed)
    (node / "denied.signed").write_bytes(sign(5, frozenset({"node-x"}), fed_key))
    assert "node-x" in DenyList(node)
    assert add_to_deny_list(node, "local-y")  # a node directory: local denied.txt only
    assert load_deny_list(node) == {"local-y"}

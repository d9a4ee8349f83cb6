"""TLS on the client API: certificates from ``memnode federation init/issue``, a real
server on port 0. A plaintext client or one trusting another CA gets a clear
UNAVAILABLE (``Unavailable``), and the node keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from federation.io.pki import CA_CERT, NODE_CERT, NODE_KEY, init_federation, issue_node
from memnode import Client, Unauthenticated, Unavailable
from memnode.api.server import server_tls
from memnode.config import NodeConfig
from memnode.storage.tokenstore import TokenStore

from helpers import NodeHandle


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tls")
    init_federation(base / "ca")
    issue_node(base / "ca", "api", base / "api")
    init_federation(base / "other-ca")
    return base


def tls_node(factory: Callable[..., NodeHandle], certs: Path, **config: object) -> NodeHandle:
    return factory("tls", tls_cert=certs / "api" / NODE_CERT,
                   tls_key=certs / "api" / NODE_KEY, **config)


def test_a_tls_client_is_served_and_a_plaintext_one_told_why_not(
        node_factory: Callable[..., NodeHandle], certs: Path) -> None:
    handle = tls_node(node_factory, certs)
    with Client(handle.addr, tls_ca=certs / "api" / CA_CERT, timeout=10) as c:
        mid = c.remember("served over TLS")
    with Client(handle.addr, timeout=5) as plain, \
            pytest.raises(Unavailable, match="if it serves TLS, pass --tls-ca"):
        plain.status()
    with Client(handle.addr, tls_ca=certs / "other-ca" / CA_CERT, timeout=5) as wrong, \
            pytest.raises(Unavailable, match="certificate of that CA"):
        wrong.status()
    with Client(handle.addr, tls_ca=certs / "api" / CA_CERT, timeout=10) as c:
        assert c.get(mid).text == "served over TLS"


def test_tls_and_tokens_together(node_factory: Callable[..., NodeHandle],
                                 certs: Path) -> None:
    handle = tls_node(node_factory, certs, client_auth="token")
    token, _ = TokenStore(handle.data_dir).issue(frozenset({"read"}), handle.node.now_ms())
    ca = certs / "api" / CA_CERT
    with Client(handle.addr, tls_ca=ca, token=token, timeout=10) as c:
        assert c.status().node_id == handle.node.node_id
    with Client(handle.addr, tls_ca=ca, timeout=10) as c, pytest.raises(Unauthenticated):
        c.status()


def test_bad_tls_files_are_a_clear_error_at_start(certs: Path, tmp_path: Path) -> None:
    cases = [(certs / "api" / NODE_CERT, tmp_path / "missing.key", "cannot read"),
             (certs / "api" / NODE_KEY, certs / "api" / NODE_KEY, "not a PEM certificate"),
             (certs / "api" / NODE_CERT, certs / "api" / NODE_CERT, "not an unencrypted PEM"),
             (certs / "api" / NODE_CERT, certs / "ca" / "ca.key", "is not the key of")]
    for cert, key, words in cases:
        with pytest.raises(ValueError, match=words):
            server_tls(cert, key)
    with pytest.raises(ValueError, match="go together"):
        NodeConfig(data_dir=tmp_path, tls_cert=certs / "api" / NODE_CERT)


def test_a_missing_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    from memnode.errors import UsageError

    with pytest.raises(UsageError, match="cannot read the TLS CA file"):
        Client("127.0.0.1:1", tls_ca=tmp_path / "nope.pem")

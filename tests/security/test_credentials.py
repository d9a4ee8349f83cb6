"""Federation credentials: files and modes, the certificates, the checks at load, and real
mutual-TLS handshakes on a real gRPC server (port 0) with the standard health service."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from federation.errors import CredentialsError
from federation.io.denylist import DenyList, add_to_deny_list, load_deny_list, make_authorizer
from federation.io.metakey import MetadataKey
from federation.io.pki import init_federation, issue_node, member_name
from federation.io.tls import load_node_credentials, load_security, peer_names
from federation.io.transport import Security

from helpers import memnode_cmd

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class World:
    fed: Path
    a: Path  # node-a of fed
    b: Path  # node-b of fed
    expired: Path  # node-old of fed, expired yesterday
    stranger: Path  # node-x of another federation


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("creds")
    init_federation(root / "fed", name="test federation")
    init_federation(root / "other")
    return World(
        fed=root / "fed",
        a=issue_node(root / "fed", "node-a", root / "a"),
        b=issue_node(root / "fed", "node-b", root / "b", dns=["b.example.org"],
                     ips=["10.0.0.2"]),
        expired=issue_node(root / "fed", "node-old", root / "old",
                           not_before=NOW - dt.timedelta(days=30),
                           not_after=NOW - dt.timedelta(days=1)),
        stranger=issue_node(root / "other", "node-x", root / "x"),
    )


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- files, modes, certificates --------------------------------------------------------


def test_keys_are_0600_and_directories_0700(world: World) -> None:
    for path in (world.fed / "ca.key", world.fed / "metadata.key",
                 world.a / "node.key", world.a / "metadata.key"):
        assert mode(path) == 0o600, path
    for path in (world.fed / "ca.crt", world.a / "node.crt", world.a / "ca.crt"):
        assert mode(path) & 0o022 == 0, path  # public, but nobody else may write them
    assert mode(world.fed) & 0o077 == mode(world.a) & 0o077 == 0


def test_node_dir_holds_the_federation_files(world: World) -> None:
    for name in ("ca.crt", "metadata.key", "denied.txt", "federation.json"):
        assert (world.a / name).read_bytes() == (world.fed / name).read_bytes(), name
    key = MetadataKey.load(world.a / "metadata.key", {})
    assert key.fingerprint() == MetadataKey.load(world.fed / "metadata.key", {}).fingerprint()
    assert not key.is_development


def test_ca_certificate(world: World) -> None:
    ca = cert(world.fed / "ca.crt")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    ca.verify_directly_issued_by(ca)  # self-signed


def test_node_chain_verifies_against_the_ca_with_its_names(world: World) -> None:
    ca, node = cert(world.fed / "ca.crt"), cert(world.b / "node.crt")
    node.verify_directly_issued_by(ca)
    store = verification.Store([ca])
    for subject in (x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.2")),
                    x509.DNSName("b.example.org"), x509.DNSName("localhost")):
        verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
        assert verifier.verify(node, [])[-1] == ca
    client = verification.PolicyBuilder().store(store).build_client_verifier()
    assert client.verify(node, []).chain[-1] == ca
    other_ca = verification.Store([cert(world.stranger / "ca.crt")])
    with pytest.raises(verification.VerificationError):
        verification.PolicyBuilder().store(other_ca).build_client_verifier().verify(node, [])


def test_node_certificate_names_and_usages(world: World) -> None:
    node = cert(world.b / "node.crt")
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert ips == {"127.0.0.1", "::1", "10.0.0.2"}
    fed_id = load_node_credentials(world.b).federation_id
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "node-b", "b.example.org", "localhost", member_name(fed_id)}
    usages = set(node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert load_node_credentials(world.b).name == "node-b"


def test_a_name_that_is_not_a_dns_name_is_only_the_cn(tmp_path: Path, world: World) -> None:
    issue_node(world.fed, "Alice's laptop", tmp_path / "n")
    node = cert(tmp_path / "n" / "node.crt")
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "Alice's laptop" not in san.get_values_for_type(x509.DNSName)
    assert load_node_credentials(tmp_path / "n").name == "Alice's laptop"


@pytest.mark.parametrize("kwargs, message", [
    ({"dns": ["not a name"]}, "not a DNS name"),
    ({"ips": ["300.1.1.1"]}, "not an IP address"),
    ({"days": 0}, "at least 1"),
])
def test_bad_issue_arguments(tmp_path: Path, world: World, kwargs: dict[str, object],
                             message: str) -> None:
    with pytest.raises(CredentialsError, match=message):
        issue_node(world.fed, "n", tmp_path / "n", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "n").exists()


# -- refusing to overwrite -------------------------------------------------------------


def test_init_refuses_an_existing_federation(world: World) -> None:
    before = (world.fed / "ca.key").read_bytes()
    with pytest.raises(CredentialsError, match="already holds a federation"):
        init_federation(world.fed)
    assert (world.fed / "ca.key").read_bytes() == before


def test_issue_refuses_to_overwrite_a_node(world: World) -> None:
    before = (world.a / "node.key").read_bytes()
    with pytest.raises(CredentialsError, match="refusing to overwrite"):
        issue_node(world.fed, "node-a", world.a)
    assert (world.a / "node.key").read_bytes() == before


def test_issue_from_a_directory_that_is_not_a_federation(tmp_path: Path, world: World) -> None:
    with pytest.raises(CredentialsError, match="not a federation directory"):
        issue_node(world.a, "n", tmp_path / "n")


# -- checks at load --------------------------------------------------------------------


def copy_node(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_load_security_gives_mutual_tls_credentials(world: World) -> None:
    security = load_security(world.a)
    assert isinstance(security, Security) and not security.insecure
    assert security.channel is not None and security.target_name_override == ""
    anywhere = load_security(world.a, verify_address=False)
    assert anywhere.target_name_override.endswith(".members.memnode.invalid")


def test_expired_certificate_is_refused_at_load(world: World) -> None:
    with pytest.raises(CredentialsError, match="expired on"):
        load_security(world.expired)


def test_not_yet_valid_certificate_is_refused_at_load(world: World) -> None:
    with pytest.raises(CredentialsError, match="not valid before"):
        load_security(world.a, now=NOW - dt.timedelta(days=1))


def test_certificate_of_another_ca_is_refused_at_load(tmp_path: Path, world: World) -> None:
    mixed = copy_node(world.a, tmp_path / "mixed")
    (mixed / "ca.crt").write_bytes((world.stranger / "ca.crt").read_bytes())
    with pytest.raises(CredentialsError, match="not signed by the CA"):
        load_security(mixed)


def test_key_of_another_certificate_is_refused(tmp_path: Path, world: World) -> None:
    mixed = copy_node(world.a, tmp_path / "mixed")
    (mixed / "node.key").unlink()
    shutil.copy2(world.b / "node.key", mixed / "node.key")
    with pytest.raises(CredentialsError, match="is not the key of"):
        load_security(mixed)


@pytest.mark.parametrize("name", ["node.key", "metadata.key"])
def test_readable_keys_are_refused_with_the_fix(tmp_path: Path, world: World, name: str) -> None:
    node = copy_node(world.a, tmp_path / "n")
    (node / name).chmod(0o640)
    with pytest.raises(CredentialsError, match=f"chmod 600 {node / name}"):
        load_security(node)


@pytest.mark.parametrize("name", ["node.key", "node.crt", "ca.crt"])
def test_missing_files_are_named(tmp_path: Path, world: World, name: str) -> None:
    node = copy_node(world.a, tmp_path / "n")
    (node / name).unlink()
    with pytest.raises(CredentialsError, match=f"missing .*{name} in .*federation issue"):
        load_security(node)


def test_garbage_and_missing_directory(tmp_path: Path, world: World) -> None:
    node = copy_node(world.a, tmp_path / "n")
    (node / "node.crt").write_text("hello")
    with pytest.raises(CredentialsError, match="not a PEM certificate"):
        load_security(node)
    with pytest.raises(CredentialsError, match="does not exist"):
        load_security(tmp_path / "nowhere")


# -- real handshakes -------------------------------------------------------------------


class _Health(health.HealthServicer):  # type: ignore[misc]
    """The standard health service, remembering who called."""

    def __init__(self) -> None:
        super().__init__()
        self.callers: list[list[str]] = []

    def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
              ) -> health_pb2.HealthCheckResponse:
        self.callers.append(peer_names(context))
        return super().Check(request, context)


@pytest.fixture(scope="module")
def server_a(world: World) -> Iterator[tuple[int, _Health]]:
    """A gRPC server speaking mutual TLS with node-a's credentials."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    servicer = _Health()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", load_security(world.a).server)
    server.start()
    yield port, servicer
    server.stop(None)


def check(port: int, credentials: grpc.ChannelCredentials, override: str = "",
          host: str = "127.0.0.1") -> grpc.StatusCode:
    options = [("grpc.ssl_target_name_override", override)] if override else []
    with grpc.secure_channel(f"{host}:{port}", credentials, options=options) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                      timeout=10)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
    return grpc.StatusCode.OK


def raw_client(node: Path, ca: Path) -> grpc.ChannelCredentials:
    """Channel credentials straight from files, with none of load_security's checks."""
    return grpc.ssl_channel_credentials(root_certificates=(ca / "ca.crt").read_bytes(),
                                        private_key=(node / "node.key").read_bytes(),
                                        certificate_chain=(node / "node.crt").read_bytes())


def test_member_to_member_handshake_works(world: World, server_a: tuple[int, _Health]) -> None:
    port, servicer = server_a
    security = load_security(world.b)
    assert check(port, security.channel) is grpc.StatusCode.OK
    assert servicer.callers[-1][0] == "node-b" and "127.0.0.1" in servicer.callers[-1]
    assert check(port, security.channel, host="localhost") is grpc.StatusCode.OK
    anywhere = load_security(world.b, verify_address=False)
    assert check(port, anywhere.channel, anywhere.target_name_override) is grpc.StatusCode.OK


def test_server_name_must_match_unless_member_name_is_used(
        world: World, server_a: tuple[int, _Health]) -> None:
    port, _ = server_a
    channel = load_security(world.b).channel
    assert check(port, channel, override="node-b") is grpc.StatusCode.UNAVAILABLE


def test_client_certificate_from_another_ca_is_refused(
        world: World, server_a: tuple[int, _Health]) -> None:
    port, servicer = server_a
    calls = len(servicer.callers)
    # Trusts our CA, so only the server's check of the client certificate can fail.
    assert check(port, raw_client(world.stranger, world.fed)) is grpc.StatusCode.UNAVAILABLE
    assert len(servicer.callers) == calls


def test_client_without_certificate_is_refused(world: World,
                                               server_a: tuple[int, _Health]) -> None:
    port, servicer = server_a
    calls = len(servicer.callers)
    no_cert = grpc.ssl_channel_credentials(root_certificates=(world.a / "ca.crt").read_bytes())
    assert check(port, no_cert) is grpc.StatusCode.UNAVAILABLE
    assert len(servicer.callers) == calls


def test_expired_client_certificate_is_refused(world: World,
                                               server_a: tuple[int, _Health]) -> None:
    port, servicer = server_a
    calls = len(servicer.callers)
    assert check(port, raw_client(world.expired, world.fed)) is grpc.StatusCode.UNAVAILABLE
    assert len(servicer.callers) == calls


def test_server_of_another_federation_is_refused(world: World) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", load_security(world.stranger).server)
    server.start()
    try:
        assert check(port, load_security(world.b).channel) is grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


# -- deny list -------------------------------------------------------------------------


class FakeContext:
    def __init__(self, cn: str) -> None:
        self._cn = cn

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_common_name": [self._cn.encode()]} if self._cn else {}


def test_deny_list_file_and_authorizer(tmp_path: Path, world: World) -> None:
    node = copy_node(world.a, tmp_path / "n")
    assert load_deny_list(node) == frozenset()
    assert (node / "denied.txt").read_text().startswith("#")
    assert add_to_deny_list(node, "abcdefghij0123456789")
    assert not add_to_deny_list(node, "abcdefghij0123456789")
    with (node / "denied.txt").open("a") as f:
        f.write("  node-evil   # the laptop that was stolen\n\n# a comment\n")
    assert load_deny_list(node) == {"abcdefghij0123456789", "node-evil"}
    authorize = make_authorizer(load_deny_list(node))
    ok = FakeContext("node-b")
    assert authorize(ok, "zzzzzzzzzzzzzzzzzzzz")  # type: ignore[arg-type]
    assert not authorize(ok, "abcdefghij0123456789")  # type: ignore[arg-type]
    assert not authorize(FakeContext("node-evil"), "zzzzzzzzzzzzzzzzzzzz")  # type: ignore[arg-type]
    with pytest.raises(CredentialsError, match="not a node id"):
        add_to_deny_list(node, "two words")
    with pytest.raises(CredentialsError, match="not a federation or node"):
        add_to_deny_list(tmp_path, "x")


def test_deny_list_is_reread_when_it_changes(tmp_path: Path, world: World) -> None:
    node = copy_node(world.a, tmp_path / "n")
    clock = [0.0]
    deny = DenyList(node, check_every=2.0, clock=lambda: clock[0])
    authorize = make_authorizer(deny)
    assert "node-b" not in deny
    add_to_deny_list(node, "node-b")
    assert "node-b" not in deny  # not looked at again yet
    clock[0] = 2.0
    assert "node-b" in deny
    assert not authorize(FakeContext("node-b"), "zzzzzzzzzzzzzzzzzzzz")  # type: ignore[arg-type]
    (node / "denied.txt").write_bytes(b"\xff\xfe broken")
    os.utime(node / "denied.txt", ns=(1, 1))
    clock[0] = 4.0
    assert "node-b" in deny  # an unreadable file keeps the last entries


# -- the CLI ---------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(memnode_cmd(*args), capture_output=True, text=True, timeout=60)


def test_cli_init_issue_deny(tmp_path: Path) -> None:
    fed, node = tmp_path / "fed", tmp_path / "node1"
    r = run("federation", "init", str(fed), "--name", "cli federation")
    assert r.returncode == 0, r.stderr
    assert "created" in r.stdout
    r = run("federation", "issue", str(fed), "--name", "node1", "--out", str(node),
            "--dns", "node1.lan", "--ip", "10.9.8.7", "--days", "30")
    assert r.returncode == 0, r.stderr
    assert mode(fed / "ca.key") == mode(node / "node.key") == mode(node / "metadata.key") == 0o600
    creds = load_node_credentials(node)
    san = creds.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "node1.lan" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("10.9.8.7") in san.get_values_for_type(x509.IPAddress)
    assert creds.cert.not_valid_after_utc - NOW < dt.timedelta(days=31)
    r = run("federation", "deny", str(fed), "node7")
    assert r.returncode == 0, r.stderr
    assert "node7" in load_deny_list(fed)


@pytest.mark.parametrize("args, message", [
    (["issue", "{tmp}", "--name", "n", "--out", "{tmp}/out"], "not a federation directory"),
    (["init", "{fed}"], "already holds a federation"),
    (["issue", "{fed}", "--name", "n", "--out", "{tmp}/o", "--ip", "nope"], "not an IP address"),
    (["deny", "{tmp}", "node7"], "not a federation or node"),
])
def test_cli_errors_exit_2_without_traceback(tmp_path: Path, world: World, args: list[str],
                                              message: str) -> None:
    argv = [a.format(tmp=tmp_path, fed=world.fed) for a in args]
    r = run("federation", *argv)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("memnode: error: ")

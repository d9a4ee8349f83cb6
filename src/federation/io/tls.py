"""Federation credentials at run time: a node directory, checked, and the sidecar's
mutual TLS made from it.

Membership is the certificate (see :mod:`federation.io.pki` for what a node directory
holds): a server requires a client certificate of the federation's CA, a channel
presents this node's. The deny list is :mod:`federation.io.denylist`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from federation.errors import CredentialsError
from federation.io.certreload import ReloadingCredentials, TlsFiles
from federation.io.pki import (
    CA_CERT,
    METADATA_KEY,
    NODE_CERT,
    NODE_KEY,
    _check_is_ca,
    _check_key_matches,
    _check_private_mode,
    _check_validity,
    _common_name,
    _ec_public_key,
    _extension,
    _parse_cert,
    _parse_key,
    _read,
    _utcnow,
    federation_id,
    member_name,
)
from federation.io.transport import Security

log = logging.getLogger("memnode.federation.tls")


@dataclass(frozen=True)
class NodeCredentials:
    """A node directory's certificates and key, checked (see :func:`load_node_credentials`)."""

    dir: Path
    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes
    cert: x509.Certificate
    ca: x509.Certificate
    federation_id: str

    @property
    def name(self) -> str:
        return _common_name(self.cert)


def load_node_credentials(dir: Path, *, now: dt.datetime | None = None) -> NodeCredentials:
    """Read and check a node directory: files present, node.key (and metadata.key) not
    readable by group or others, the key matches node.crt, node.crt signed by ca.crt,
    both valid at ``now`` and usable for mutual TLS."""
    dir = Path(dir)
    if not dir.is_dir():
        raise CredentialsError(f"federation credentials directory {dir} does not exist; "
                               "make one with `memnode federation issue FEDERATION_DIR "
                               f"--name NODE --out {dir}`")
    hint = (f"issue this node's credentials with `memnode federation issue FEDERATION_DIR "
            f"--name NODE --out {dir}`")
    key_pem = _read(dir / NODE_KEY, "this node's", hint, private=True)
    cert_pem = _read(dir / NODE_CERT, "this node's", hint)
    ca_pem = _read(dir / CA_CERT, "the federation's", hint)
    if (dir / METADATA_KEY).exists():
        _check_private_mode(dir / METADATA_KEY)
    key = _parse_key(key_pem, dir / NODE_KEY)
    cert = _parse_cert(cert_pem, dir / NODE_CERT)
    ca = _parse_cert(ca_pem, dir / CA_CERT)
    _check_key_matches(key, cert, dir / NODE_KEY, dir / NODE_CERT)
    _check_is_ca(ca, dir / CA_CERT)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CredentialsError(
            f"{dir / NODE_CERT} (CN={_common_name(cert)!r}) is not signed by the CA in "
            f"{dir / CA_CERT} (CN={_common_name(ca)!r}): credentials from another "
            "federation?") from None
    now = now or _utcnow()
    _check_validity(ca, dir / CA_CERT, now)
    _check_validity(cert, dir / NODE_CERT, now)
    usages = _extension(cert, x509.ExtendedKeyUsage)
    if usages is not None and not {ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages):
        raise CredentialsError(f"{dir / NODE_CERT} is not for both TLS server and client "
                               "use (extended key usage): issue it with memnode")
    return NodeCredentials(dir, key_pem, cert_pem, ca_pem, cert, ca,
                           federation_id(_ec_public_key(ca, dir / CA_CERT)))


def load_security(dir: Path, *, verify_address: bool = True, now: dt.datetime | None = None,
                  check_every: float = 1.0, settle: float = 0.3) -> Security:
    """Mutual-TLS credentials from a node directory (see :func:`load_node_credentials`),
    re-read when its node.key, node.crt or ca.crt change (:mod:`federation.io.certreload`:
    a renewed certificate is served to new connections and presented by new channels;
    files that fail the checks are refused, and the ones in force stay).

    The server requires a client certificate from the federation's CA. The channel
    presents this node's certificate and checks the server's against the CA and
    against the address dialled (its SANs), or, with ``verify_address=False``,
    against :func:`member_name` (any member, at any address).
    """
    dir = Path(dir)
    first = load_node_credentials(dir, now=now)
    unread = [first]  # the first load is the one just made

    def load() -> TlsFiles:
        creds = unread.pop() if unread else load_node_credentials(dir)
        if creds.federation_id != first.federation_id:
            raise CredentialsError(f"{dir / CA_CERT} is now the CA of federation "
                                   f"{creds.federation_id}, not {first.federation_id}: "
                                   "changing federation takes a restart")
        return TlsFiles(creds.key_pem, creds.cert_pem, creds.ca_pem, creds.cert)

    files = ReloadingCredentials(f"gossip TLS of {dir}",
                                 [dir / NODE_KEY, dir / NODE_CERT, dir / CA_CERT], load,
                                 check_every=check_every, settle=settle)
    override = "" if verify_address else member_name(first.federation_id)
    return Security(server=files.server_credentials(require_client_auth=True),
                    channel=files.channel_credentials(), target_name_override=override,
                    federation_id=first.federation_id, files=files)


def peer_names(context: grpc.ServicerContext) -> list[str]:
    """The peer certificate's CN then SANs (DNS names and IP addresses), for logs.
    Empty on a plaintext connection."""
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth_values(context, key):
            if value not in names:
                names.append(value)
    return names


def auth_values(context: grpc.ServicerContext, key: str) -> list[str]:
    return [v.decode("utf-8", "replace") for v in context.auth_context().get(key, ())]

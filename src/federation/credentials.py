"""Federation credentials: a CA, node certificates, and the mutual TLS they give the sidecar.

An adapter (``cryptography``, ``grpc``, files). Two kinds of directory::

    federation dir (the CA; keep it off the nodes)   node dir (``--federation DIR``)
      ca.key           0600  ECDSA P-256, PKCS8       node.key         0600
      ca.crt                 self-signed, pathlen 0   node.crt         CN=name, SANs
      metadata.key     0600  MetadataKey (hex)        ca.crt           copy
      denied.txt             deny list                metadata.key     0600, copy
      federation.json        id, name, created_at     denied.txt       copy
                                                      federation.json  copy

Membership is the certificate: a peer speaks to a sidecar only with a certificate
issued by the same CA (``require_client_auth``), and a sidecar speaks only to servers
holding one, whose names (SANs) must match the address dialled unless
``load_security(..., verify_address=False)``, which checks against a name that every
node certificate of the federation carries (:func:`member_name`) instead.

The deny list (``denied.txt``): one entry per line, ``#`` starts a comment. An entry
is a node id (refused when it is the sender of a message) or a certificate name (the
CN given to ``issue --name``: refused whatever node id it claims). Deny the
certificate name too: a member can make itself a new node id at will, but not a new
certificate. Edit the federation's copy (``memnode federation deny``), then copy it
to every node directory; :class:`DenyList` re-reads a changed file.

Errors: :class:`CredentialsError` (a ``FederationError`` and a ``ValueError``), with
a message that says what to do. Key material never appears in a message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.errors import FederationError
from federation.transport import Security
from memnode.identity import write_private_file
from memnode.metakey import MetadataKey

log = logging.getLogger("memnode.federation.credentials")

CA_KEY, CA_CERT, NODE_KEY, NODE_CERT = "ca.key", "ca.crt", "node.key", "node.crt"
METADATA_KEY, DENY_FILE, INFO_FILE = "metadata.key", "denied.txt", "federation.json"
BACKDATE = dt.timedelta(hours=1)  # certificates start an hour early: tolerate clock skew
EXPIRY_WARNING = dt.timedelta(days=30)
DEFAULT_IPS = ("127.0.0.1", "::1")

DENY_HEADER = """\
# memnode federation deny list: one entry per line; '#' starts a comment.
# An entry is a node id (messages sent by it are refused) or a certificate name
# (the --name it was issued with: refused whatever node id it claims).
# Add entries with `memnode federation deny DIR ENTRY`, then copy this file to the
# credentials directory of every node.
"""

_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


class CredentialsError(FederationError, ValueError):
    """Credentials that are missing, unreadable, unsafe, expired or not of this federation."""


@dataclass(frozen=True)
class FederationPaths:
    """What :func:`init_federation` wrote."""

    dir: Path
    federation_id: str
    ca_key: Path
    ca_cert: Path
    metadata_key: Path
    deny_list: Path
    info: Path


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


# -- creating a federation and issuing node credentials ----------------------------------


def federation_id(ca_public_key: ec.EllipticCurvePublicKey) -> str:
    """First 16 hex characters of the SHA-256 of the CA's SubjectPublicKeyInfo."""
    spki = ca_public_key.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()[:16]


def member_name(fed_id: str) -> str:
    """The DNS name in every node certificate of a federation (``.invalid``: never resolves).
    ``verify_address=False`` checks a server against it instead of the address dialled."""
    return f"{fed_id}.members.memnode.invalid"


def init_federation(dir: Path, name: str = "memnode federation", days: int = 3650, *,
                    now: dt.datetime | None = None) -> FederationPaths:
    """Create a federation in ``dir``: CA key and certificate, metadata key, an empty
    deny list and ``federation.json``. Refuses if any of them exists already."""
    dir = Path(dir)
    name = _check_name(name)
    _check_days(days)
    _refuse_existing(dir, (CA_KEY, CA_CERT, METADATA_KEY, DENY_FILE, INFO_FILE),
                     "already holds a federation")
    now = now or _utcnow()
    key = ec.generate_private_key(ec.SECP256R1())
    fed_id = federation_id(key.public_key())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "memnode"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                            f"federation {fed_id}")])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    info = {"format": 1, "federation_id": fed_id, "name": name,
            "created_at": now.isoformat(timespec="seconds"),
            "ca_not_after": cert.not_valid_after_utc.isoformat(timespec="seconds")}
    paths = FederationPaths(dir, fed_id, dir / CA_KEY, dir / CA_CERT, dir / METADATA_KEY,
                            dir / DENY_FILE, dir / INFO_FILE)
    with _io_errors(dir):
        _make_dir(dir)
        write_private_file(paths.ca_key, _key_pem(key))
        _write_public(paths.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
        MetadataKey.generate().write(paths.metadata_key)
        _write_public(paths.deny_list, DENY_HEADER.encode())
        _write_public(paths.info, (json.dumps(info, indent=2) + "\n").encode())
    return paths


def issue_node(federation_dir: Path, name: str, out: Path, *, dns: Sequence[str] = (),
               ips: Sequence[str] = (), days: int = 365, not_before: dt.datetime | None = None,
               not_after: dt.datetime | None = None) -> Path:
    """Issue a node certificate (CN=name, serverAuth + clientAuth) and key into ``out``,
    with copies of the CA certificate, metadata key, deny list and federation.json.

    SANs: ``name`` if it is a DNS name, ``localhost``, :func:`member_name`, ``dns``;
    127.0.0.1, ::1 and ``ips``. The certificate ends no later than the CA's.
    Refuses to overwrite anything in ``out``. Returns ``out``.
    """
    federation_dir, out = Path(federation_dir), Path(out)
    name = _check_name(name)
    _check_days(days)
    ca_key, ca_cert = _load_ca(federation_dir)
    fed_id = federation_id(ca_key.public_key())
    dns_names = _dns_names([name.lower()] if _is_dns_name(name.lower()) else [], dns,
                           ["localhost", member_name(fed_id)])
    addresses = _ip_addresses([*DEFAULT_IPS, *ips])
    now = _utcnow()
    start = not_before or now - BACKDATE
    end = not_after or min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    if end <= start:
        raise CredentialsError(f"certificate would end ({end:%Y-%m-%d %H:%M} UTC) before it "
                               f"starts ({start:%Y-%m-%d %H:%M} UTC); is the CA expired?")
    copies = {n: _read(federation_dir / n, "the federation's", private=n == METADATA_KEY)
              for n in (METADATA_KEY, DENY_FILE, INFO_FILE)}
    _refuse_existing(out, (NODE_KEY, NODE_CERT, CA_CERT, *copies), "already holds credentials")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                 x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                                    f"federation {fed_id}")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(
            [*(x509.DNSName(d) for d in dns_names), *(x509.IPAddress(a) for a in addresses)]),
            critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    with _io_errors(out):
        _make_dir(out)
        write_private_file(out / NODE_KEY, _key_pem(key))
        _write_public(out / NODE_CERT, cert.public_bytes(serialization.Encoding.PEM))
        _write_public(out / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM))
        write_private_file(out / METADATA_KEY, copies.pop(METADATA_KEY))
        for file_name, data in copies.items():
            _write_public(out / file_name, data)
    return out


def add_to_deny_list(dir: Path, entry: str) -> bool:
    """Append ``entry`` (a node id or certificate name) to ``dir``'s denied.txt.
    Returns False if it was already there."""
    dir = Path(dir)
    entry = entry.strip()
    if not entry or "#" in entry or any(c.isspace() or not c.isprintable() for c in entry):
        raise CredentialsError(f"not a node id or certificate name: {entry!r}")
    if not (dir / CA_CERT).is_file():
        raise CredentialsError(f"{dir} is not a federation or node credentials directory "
                               f"(no {CA_CERT})")
    if entry in load_deny_list(dir):
        return False
    with _io_errors(dir), open(dir / DENY_FILE, "a+", encoding="utf-8") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(f.tell() - 1)
            if f.read(1) != "\n":
                f.write("\n")
        f.write(entry + "\n")
    return True


# -- loading a node's credentials -------------------------------------------------------


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


def load_security(dir: Path, *, verify_address: bool = True,
                  now: dt.datetime | None = None) -> Security:
    """Mutual-TLS credentials from a node directory (see :func:`load_node_credentials`).

    The server requires a client certificate from the federation's CA. The channel
    presents this node's certificate and checks the server's against the CA and
    against the address dialled (its SANs), or, with ``verify_address=False``,
    against :func:`member_name` (any member, at any address).
    """
    creds = load_node_credentials(dir, now=now)
    server = grpc.ssl_server_credentials([(creds.key_pem, creds.cert_pem)],
                                         root_certificates=creds.ca_pem,
                                         require_client_auth=True)
    channel = grpc.ssl_channel_credentials(root_certificates=creds.ca_pem,
                                           private_key=creds.key_pem,
                                           certificate_chain=creds.cert_pem)
    override = "" if verify_address else member_name(creds.federation_id)
    return Security(server=server, channel=channel, target_name_override=override)


# -- deny list and peers ----------------------------------------------------------------


def load_deny_list(dir: Path) -> frozenset[str]:
    """The entries of ``dir/denied.txt`` (empty if there is no such file)."""
    path = Path(dir) / DENY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return frozenset()
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read the deny list {path}: {exc}") from exc
    return frozenset(token for line in text.splitlines()
                     for token in line.partition("#")[0].split())


class DenyList:
    """``dir/denied.txt``, re-read when it changes (looked at every ``check_every`` s).

    Thread-safe. If the file becomes unreadable the last entries stay in force and
    a warning is logged.
    """

    def __init__(self, dir: Path, *, check_every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(dir) / DENY_FILE
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._entries = load_deny_list(Path(dir))
        self._checked = clock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def entries(self) -> frozenset[str]:
        with self._lock:
            if self._clock() - self._checked >= self._check_every:
                self._checked = self._clock()
                stamp = self._stat()
                if stamp != self._stamp:
                    try:
                        self._entries = load_deny_list(self.path.parent)
                        self._stamp = stamp
                        log.info("deny list %s reloaded: %d entries", self.path,
                                 len(self._entries))
                    except CredentialsError as exc:
                        log.warning("%s; keeping the previous %d entries", exc,
                                    len(self._entries))
            return self._entries

    def __contains__(self, entry: object) -> bool:
        return entry in self.entries()


def make_authorizer(deny: DenyList | frozenset[str]
                    ) -> Callable[[grpc.ServicerContext, str], bool]:
    """An ``authorize(context, sender)`` for GossipTransport: False when the sender's
    node id or the peer certificate's CN is denied."""

    def authorize(context: grpc.ServicerContext, sender: str) -> bool:
        entries = deny if isinstance(deny, frozenset) else deny.entries()
        if not entries:
            return True
        if sender in entries:
            return False
        cn = _auth_values(context, "x509_common_name")
        return not (set(cn) & entries)

    return authorize


def peer_names(context: grpc.ServicerContext) -> list[str]:
    """The peer certificate's CN then SANs (DNS names and IP addresses), for logs.
    Empty on a plaintext connection."""
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in _auth_values(context, key):
            if value not in names:
                names.append(value)
    return names


def peer_certificate(context: grpc.ServicerContext) -> x509.Certificate | None:
    """The peer's certificate (None on a plaintext connection)."""
    pem = context.auth_context().get("x509_pem_cert")
    return x509.load_pem_x509_certificate(pem[0]) if pem else None


# -- helpers ----------------------------------------------------------------------------


def _auth_values(context: grpc.ServicerContext, key: str) -> list[str]:
    return [v.decode("utf-8", "replace") for v in context.auth_context().get(key, ())]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise CredentialsError(f"a name is 1 to 64 printable characters, got {name!r}")
    return name


def _check_days(days: int) -> None:
    if days < 1:
        raise CredentialsError(f"--days must be at least 1, got {days}")


def _is_dns_name(name: str) -> bool:
    return len(name) <= 253 and all(_DNS_LABEL.match(label) for label in name.split("."))


def _dns_names(*groups: Iterable[str]) -> list[str]:
    names: list[str] = []
    for group in groups:
        for raw in group:
            name = raw.strip().lower().rstrip(".")
            if not _is_dns_name(name):
                raise CredentialsError(f"not a DNS name: {raw!r} (for an address use --ip)")
            if name not in names:
                names.append(name)
    return names


def _ip_addresses(raw: Iterable[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for value in raw:
        try:
            address = ipaddress.ip_address(value.strip().strip("[]"))
        except ValueError:
            raise CredentialsError(f"not an IP address: {value!r} (for a name use --dns)") from None
        if address not in out:
            out.append(address)
    return out


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _make_dir(dir: Path) -> None:
    dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def _io_errors(dir: Path) -> Iterator[None]:
    """Turn an OSError while writing into a CredentialsError naming the file."""
    try:
        yield
    except OSError as exc:
        raise CredentialsError(f"cannot write {exc.filename or dir}: {exc.strerror or exc}"
                               ) from exc


def _refuse_existing(dir: Path, names: Iterable[str], what: str) -> None:
    existing = [n for n in names if (dir / n).exists()]
    if existing:
        raise CredentialsError(f"{dir} {what} ({', '.join(existing)}): refusing to "
                               "overwrite; choose another directory")


def _check_private_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CredentialsError(f"{path} is readable by others (mode {mode:04o}): "
                               f"run `chmod 600 {path}`")


def _read(path: Path, whose: str, hint: str = "", *, private: bool = False) -> bytes:
    try:
        if private:
            _check_private_mode(path)
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"missing {whose} {path.name} in {path.parent}"
                               + (f": {hint}" if hint else "")) from None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _parse_key(pem: bytes, path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialsError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"{path} is not an ECDSA key: issue credentials with memnode")
    return key


def _parse_cert(pem: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CredentialsError(f"{path} is not a PEM certificate") from exc


def _ec_public_key(cert: x509.Certificate, path: Path) -> ec.EllipticCurvePublicKey:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise CredentialsError(f"{path} does not hold an ECDSA public key")
    return public


def _check_key_matches(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
                       key_path: Path, cert_path: Path) -> None:
    if _ec_public_key(cert, cert_path).public_numbers() != key.public_key().public_numbers():
        raise CredentialsError(f"{key_path} is not the key of {cert_path}")


def _check_is_ca(cert: x509.Certificate, path: Path) -> None:
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CredentialsError(f"{path} is not a CA certificate")


def _check_validity(cert: x509.Certificate, path: Path, now: dt.datetime) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    what = f"{path} (CN={_common_name(cert)!r})"
    if now > end:
        raise CredentialsError(f"{what} expired on {end:%Y-%m-%d %H:%M} UTC: issue a new "
                               "one with `memnode federation issue`")
    if now < start:
        raise CredentialsError(f"{what} is not valid before {start:%Y-%m-%d %H:%M} UTC: "
                               "check this host's clock")
    if end - now < EXPIRY_WARNING:
        log.warning("%s expires on %s UTC", what, f"{end:%Y-%m-%d %H:%M}")


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _load_ca(dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if not (dir / CA_KEY).exists():
        raise CredentialsError(f"{dir} is not a federation directory (no {CA_KEY}): create "
                               f"one with `memnode federation init {dir}`")
    key = _parse_key(_read(dir / CA_KEY, "the federation's", private=True), dir / CA_KEY)
    cert = _parse_cert(_read(dir / CA_CERT, "the federation's"), dir / CA_CERT)
    _check_key_matches(key, cert, dir / CA_KEY, dir / CA_CERT)
    _check_is_ca(cert, dir / CA_CERT)
    return key, cert

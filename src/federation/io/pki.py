"""Federation credentials, offline: a CA, node certificates, the deny list file.

An adapter (``cryptography``, files; no network). :mod:`federation.io.tls` turns a
node directory into the sidecar's mutual TLS. Two kinds of directory::

    federation dir (the CA; keep it off the nodes)   node dir (``--federation DIR``)
      ca.key           0600  ECDSA P-256, PKCS8       node.key         0600
      ca.crt                 self-signed, pathlen 0   node.crt         CN=name, SANs
      metadata.key     0600  MetadataKey (hex)        ca.crt           copy
      denied.txt             deny list (to read)      metadata.key     0600, copy
      denied.signed          deny list, CA-signed     denied.txt       copy
      federation.json        id, name, created_at     denied.signed    copy (if any)
                                                      federation.json  copy

Membership is the certificate: a peer speaks to a sidecar only with a certificate
issued by the same CA (``require_client_auth``), and a sidecar speaks only to servers
holding one, whose names (SANs) must match the address dialled unless
``load_security(..., verify_address=False)``, which checks against a name that every
node certificate of the federation carries (:func:`member_name`) instead.

The deny list's format and its reloading: :mod:`federation.io.denylist`; its CA
signature: :mod:`federation.io.denysign`.

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.errors import CredentialsError
from federation.io.files import replace_file, write_private_file
from federation.io.metakey import MetadataKey

log = logging.getLogger("memnode.federation.pki")

CA_KEY, CA_CERT, NODE_KEY, NODE_CERT = "ca.key", "ca.crt", "node.key", "node.crt"
METADATA_KEY, DENY_FILE, INFO_FILE = "metadata.key", "denied.txt", "federation.json"
SIGNED_DENY_FILE = "denied.signed"
SIGNED_ERASURE_FILE = "erasures.signed"
BACKDATE = dt.timedelta(hours=1)  # certificates start an hour early: tolerate clock skew
EXPIRY_WARNING = dt.timedelta(days=30)
DEFAULT_IPS = ("127.0.0.1", "::1")

DENY_HEADER = """\
# memnode federation deny list: one entry per line; '#' starts a comment.
# An entry is a node id (messages sent by it are refused) or a certificate name
# (the --name it was issued with: refused whatever node id it claims).
# Add entries with `memnode federation deny FEDERATION_DIR ENTRY`: it signs the list
# with the CA (denied.signed), which members verify and gossip to each other.
"""

_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


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
               not_after: dt.datetime | None = None, renew: bool = False) -> Path:
    """Issue a node certificate (CN=name, serverAuth + clientAuth) and key into ``out``,
    with copies of the CA certificate, metadata key, deny list and federation.json.

    SANs: ``name`` if it is a DNS name, ``localhost``, :func:`member_name`, ``dns``;
    127.0.0.1, ::1 and ``ips``. The certificate ends no later than the CA's.
    Refuses to overwrite anything in ``out``, unless ``renew``: then ``out`` must hold
    this federation's credentials of the same name, and only node.key and node.crt are
    replaced (each atomically; a running node picks them up, :mod:`federation.io.
    certreload`). Returns ``out``.
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
    for signed in (SIGNED_DENY_FILE, SIGNED_ERASURE_FILE):
        if (federation_dir / signed).exists():
            copies[signed] = _read(federation_dir / signed, "the federation's")
    if renew:
        _check_renewable(out, name, ca_cert)
    else:
        _refuse_existing(out, (NODE_KEY, NODE_CERT, CA_CERT, *copies),
                         "already holds credentials")
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
    if renew:
        with _io_errors(out):
            replace_file(out / NODE_KEY, _key_pem(key))
            replace_file(out / NODE_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return out
    with _io_errors(out):
        _make_dir(out)
        write_private_file(out / NODE_KEY, _key_pem(key))
        _write_public(out / NODE_CERT, cert.public_bytes(serialization.Encoding.PEM))
        _write_public(out / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM))
        write_private_file(out / METADATA_KEY, copies.pop(METADATA_KEY))
        for file_name, data in copies.items():
            _write_public(out / file_name, data)
    return out


def _check_renewable(out: Path, name: str, ca_cert: x509.Certificate) -> None:
    """``issue --renew``: ``out`` holds a certificate of ``name`` from this CA."""
    old = _parse_cert(_read(out / NODE_CERT, "the renewed node's",
                            "issue it first, without --renew"), out / NODE_CERT)
    if _common_name(old) != name:
        raise CredentialsError(f"{out / NODE_CERT} is the certificate of "
                               f"{_common_name(old)!r}, not {name!r}: renew with its name")
    if old.issuer != ca_cert.subject:
        raise CredentialsError(f"{out / NODE_CERT} was not issued by this federation's CA")


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

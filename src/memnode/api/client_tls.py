"""TLS of the client API (``--tls-cert``, ``--tls-key``; server-authenticated, clients
pass ``--tls-ca``), re-read when the files change: a certificate renewed in place is
served to new connections without a restart, and files that fail the checks are
refused (logged, counted in ``memnode_client_tls_certificate_reloads_total``) while the
ones in force stay (:mod:`federation.io.certreload`)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from federation.io.certreload import ReloadingCredentials, TlsFiles


def check_tls_files(cert: Path, key: Path) -> TlsFiles:
    """Read and check the client API's certificate and key: ValueError says what is wrong."""
    try:
        cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the client API's TLS files: {exc}") from None
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError(f"{cert}: not a PEM certificate (--tls-cert)") from None
    try:
        private = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{key}: not an unencrypted PEM private key (--tls-key)") from None
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise ValueError(f"{key} is not the key of {cert} (--tls-key, --tls-cert)")
    return TlsFiles(key_pem, cert_pem, None, certificate)


def server_tls(cert: Path, key: Path) -> ReloadingCredentials:
    """The client API's TLS files, checked now (ValueError) and re-read when they change."""
    return ReloadingCredentials("client API TLS", [cert, key],
                                lambda: check_tls_files(cert, key))

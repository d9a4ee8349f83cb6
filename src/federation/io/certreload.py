"""TLS certificates and keys re-read when their files change: renewal without restart.

:class:`ReloadingCredentials` holds the files in force and looks at them through a
:class:`~federation.io.filewatch.FileWatch` (``settle``: a key and its certificate
replaced one after the other are read together). A new version is checked by the
caller's ``load`` (parse, key matching the certificate, chain, validity) before it
replaces the old one; a version that fails is refused, logged as an error and counted
in ``rejected``, and the files in force stay in service.

- A gRPC server made with :meth:`server_credentials` (``dynamic_ssl_server_credentials``)
  asks before every new TLS handshake: new connections are served the new
  certificate; connections already open keep theirs.
- :meth:`channel_credentials` gives the credentials for a new channel: a channel opened
  after the change presents the new certificate; streams already open go on until
  they reconnect.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from federation.io.filewatch import FileWatch

log = logging.getLogger("memnode.federation.certs")

__all__ = ["ReloadingCredentials", "TlsCollector", "TlsFiles", "tls_metrics"]


@dataclass(frozen=True)
class TlsFiles:
    """A checked certificate, its key and (for mutual TLS) the CA to trust."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes | None
    cert: x509.Certificate

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc


class ReloadingCredentials:
    """Thread-safe. ``load`` raises ValueError (CredentialsError is one) or OSError on
    files it refuses; at construction that error goes to the caller (the process does
    not start on bad files)."""

    def __init__(self, what: str, paths: Sequence[Path], load: Callable[[], TlsFiles], *,
                 check_every: float = 1.0, settle: float = 0.3) -> None:
        self.what = what
        self._load = load
        self._watch = FileWatch(paths, check_every=check_every, settle=settle)
        self._files = load()
        self._lock = threading.Lock()
        self._channel: tuple[int, grpc.ChannelCredentials] | None = None
        self.generation = 0
        self.reloads = 0
        self.rejected = 0

    def files(self) -> TlsFiles:
        """The files in force, after re-reading them if they changed."""
        if self._watch.changed():
            self._reload()
        return self._files

    def _reload(self) -> None:
        old = self._files
        try:
            new = self._load()
        except (ValueError, OSError) as exc:
            with self._lock:
                self.rejected += 1
            log.error("%s: new certificate or key refused, keeping serial %x (until %s): %s",
                      self.what, old.serial, f"{old.not_after:%Y-%m-%d %H:%M} UTC", exc)
            return
        with self._lock:
            self._files = new
            self.generation += 1
            self.reloads += 1
        log.info("%s: certificate reloaded, serial %x valid until %s (was serial %x)",
                    self.what, new.serial, f"{new.not_after:%Y-%m-%d %H:%M} UTC", old.serial)

    def server_credentials(self, *, require_client_auth: bool) -> grpc.ServerCredentials:
        """Server credentials that serve the files in force to each new connection."""
        served = [self.generation]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            try:
                files = self.files()
                generation = self.generation
                if generation == served[0]:
                    return None
                served[0] = generation
                return _server_config(files)
            except Exception:  # never fail a handshake over a reload: keep what is served
                log.exception("%s: reloading the certificate failed", self.what)
                return None

        return grpc.dynamic_ssl_server_credentials(
            _server_config(self._files), fetch,
            require_client_authentication=require_client_auth)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials for a new channel: this node's certificate in force, trusting
        the CA in force."""
        self.files()
        with self._lock:
            files = self._files
            cached = self._channel
            if cached is not None and cached[0] == self.generation:
                return cached[1]
            creds = grpc.ssl_channel_credentials(root_certificates=files.ca_pem,
                                                 private_key=files.key_pem,
                                                 certificate_chain=files.cert_pem)
            self._channel = (self.generation, creds)
            return creds


def _server_config(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(files.key_pem, files.cert_pem)], root_certificates=files.ca_pem)


def tls_metrics(prefix: str, creds: ReloadingCredentials) -> Iterator[Any]:
    """``{prefix}_certificate_reloads_total{result="ok"|"rejected"}`` and
    ``{prefix}_certificate_expiry_timestamp_seconds`` (of the certificate in force), for
    a Prometheus collector."""
    reloads = CounterMetricFamily(f"{prefix}_certificate_reloads", f"New versions of the "
                                  f"{creds.what} certificate files adopted or refused",
                                  labels=["result"])
    reloads.add_metric(["ok"], creds.reloads)
    reloads.add_metric(["rejected"], creds.rejected)
    yield reloads
    yield GaugeMetricFamily(f"{prefix}_certificate_expiry_timestamp_seconds",
                            f"When the {creds.what} certificate in force expires (Unix time)",
                            value=creds.files().not_after.timestamp())


class TlsCollector(Collector):
    def __init__(self, prefix: str, creds: ReloadingCredentials) -> None:
        self._prefix = prefix
        self._creds = creds

    def collect(self) -> Iterator[Any]:
        return tls_metrics(self._prefix, self._creds)

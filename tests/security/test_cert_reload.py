"""federation.io.certreload: certificate files re-read when they change; a renewal is
adopted, anything that fails the checks is refused and counted, the files in force stay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from federation.errors import CredentialsError
from federation.io.certreload import ReloadingCredentials
from federation.io.pki import CA_CERT, NODE_CERT, NODE_KEY, init_federation, issue_node
from federation.io.tls import load_security
from memnode.api.client_tls import check_tls_files


@pytest.fixture
def fed(tmp_path: Path) -> Path:
    init_federation(tmp_path / "fed")
    return tmp_path / "fed"


def test_a_renewed_certificate_is_adopted_and_broken_files_are_refused(
        fed: Path, tmp_path: Path) -> None:
    creds = issue_node(fed, "api", tmp_path / "api")
    cert, key = creds / NODE_CERT, creds / NODE_KEY
    tls = ReloadingCredentials("client API TLS", [cert, key],
                               lambda: check_tls_files(cert, key), check_every=0, settle=0)
    old = tls.files().serial
    channel = tls.channel_credentials()
    issue_node(fed, "api", creds, renew=True)
    assert tls.files().serial != old and tls.reloads == 1 and tls.generation == 1
    assert tls.channel_credentials() is not channel  # new channels present the new one
    renewed = tls.files().serial
    cert.write_text("not a certificate")
    assert tls.files().serial == renewed and tls.rejected == 1
    shutil.copy(tmp_path / "api" / NODE_CERT, tmp_path / "kept.crt")
    issue_node(fed, "other", tmp_path / "other")
    shutil.copy(tmp_path / "other" / NODE_CERT, cert)  # not the certificate of node.key
    assert tls.files().serial == renewed and tls.rejected == 2


def test_renewing_refuses_another_name_or_no_credentials(fed: Path, tmp_path: Path) -> None:
    issue_node(fed, "a", tmp_path / "a")
    with pytest.raises(CredentialsError, match="certificate of 'a', not 'b'"):
        issue_node(fed, "b", tmp_path / "a", renew=True)
    with pytest.raises(CredentialsError, match="missing the renewed node's node.crt"):
        issue_node(fed, "c", tmp_path / "c", renew=True)
    with pytest.raises(CredentialsError, match="refusing to overwrite"):
        issue_node(fed, "a", tmp_path / "a")


def test_gossip_credentials_refuse_a_ca_of_another_federation(fed: Path, tmp_path: Path) -> None:
    creds = issue_node(fed, "n", tmp_path / "n")
    security = load_security(creds, verify_address=False, check_every=0, settle=0)
    assert security.files is not None
    serial = security.files.files().serial
    init_federation(tmp_path / "other")
    other = issue_node(tmp_path / "other", "n", tmp_path / "n2")
    shutil.copytree(creds, tmp_path / "saved")
    for name in (NODE_KEY, NODE_CERT, CA_CERT):  # a whole other member's credentials
        shutil.copy(other / name, creds / name)
    (creds / NODE_KEY).chmod(0o600)
    assert security.files.files().serial == serial and security.files.rejected == 1
    for name in (NODE_KEY, NODE_CERT, CA_CERT):
        shutil.copy(tmp_path / "saved" / name, creds / name)
    issue_node(fed, "n", creds, renew=True)
    assert security.files.files().serial != serial
    assert security.files.reloads == 1

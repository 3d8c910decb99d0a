"""TLS contexts: operator certificates or a generated self-signed one, reloadable on SIGHUP."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path

log = logging.getLogger(__name__)

SELF_SIGNED_CERT = "tls-selfsigned-cert.pem"
SELF_SIGNED_KEY = "tls-selfsigned-key.pem"


def generate_self_signed(data_dir: Path, hostname: str) -> tuple[Path, Path]:
    """Create (once) a self-signed certificate for ``hostname``, localhost and 127.0.0.1 in ``data_dir``."""
    cert_path, key_path = data_dir / SELF_SIGNED_CERT, data_dir / SELF_SIGNED_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.warning("generated a self-signed TLS certificate for %s in %s; configure [tls] cert/key for production",
                hostname, cert_path)
    return cert_path, key_path


class ReloadableTLS:
    """Holds the server ``ssl.SSLContext`` of one certificate pair; :meth:`reload` swaps in a fresh one.

    Listeners read :attr:`context` for each new connection, so a reload affects new connections only.
    """

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.context = self._load()

    def _load(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def reload(self) -> None:
        """Re-read the certificate files; on error keep the current context and log why."""
        try:
            self.context = self._load()
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS reload of %s failed, keeping the previous certificate: %s", self.cert, exc)
        else:
            log.info("reloaded TLS certificate %s", self.cert)

"""TLS for the local RDS servers, as RDS does it: a certificate authority of the cloud's own (RDS has one per
region, ``rds-ca-rsa2048-g1``), and for each DB instance a server certificate for its endpoint, signed by it.

A client verifies the server with the CA's certificate: on AWS the RDS CA bundle, here ``ca.pem`` in the cloud's
``rds-ca`` folder (``labkit``'s ``db_ca_bundle()`` reads it). Key files are readable by their owner only.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "Local cloud RDS Root CA RSA2048 G1"
CA_FILE, CA_KEY_FILE = "ca.pem", "ca.key"
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 397  # RDS's server certificates are renewed within about a year as well


@dataclass(frozen=True)
class TlsFiles:
    """What one server needs to serve TLS: the CA's certificate, its own certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def server_args(self) -> list[str]:
        """mariadbd/mysqld options that serve TLS with these files (plain connections stay allowed, as on RDS
        while ``require_secure_transport`` is off)."""
        return [f"--ssl-ca={self.ca}", f"--ssl-cert={self.cert}", f"--ssl-key={self.key}"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Orders Lab local cloud"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "RDS"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days)))


def ensure_ca(folder: Path) -> tuple[Path, Path]:
    """The CA's certificate and key in ``folder``, made the first time."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    cert, key_path = folder / CA_FILE, folder / CA_KEY_FILE
    if cert.exists() and key_path.exists():
        return cert, key_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (_builder(_name(CA_COMMON_NAME), _name(CA_COMMON_NAME), key.public_key(), CA_VALID_DAYS)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(ski, critical=False)
                   .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key_path


def issue_server_files(ca_folder: Path, folder: Path, identifier: str, hosts: tuple[str, ...]) -> TlsFiles:
    """A new key and certificate in ``folder`` for DB instance ``identifier``, valid for ``hosts`` (its endpoint
    addresses or names), signed by the CA in ``ca_folder``."""
    ca_cert_path, ca_key_path = ensure_ca(ca_folder)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):  # ensure_ca makes an RSA key
        raise RuntimeError(f"{ca_key_path} holds no RSA key: delete {ca_folder} and the cloud makes a new CA")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (_builder(_name(identifier), ca_cert.subject, key.public_key(), SERVER_VALID_DAYS)
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(ca_cert_path, folder / "server-cert.pem", folder / "server-key.pem")
    _write_key(files.key, key)
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return files

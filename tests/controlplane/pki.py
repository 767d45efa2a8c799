"""Certificates for a loopback control plane: one CA, one key pair, a certificate per identity.

As KWOK's own binary-cluster launcher does, one RSA key serves TLS, client certificates and
service-account token signing: the cluster lives for one test run on 127.0.0.1, so separate keys
would buy nothing but start time. Each component gets its own client certificate, so the API
server's RBAC and audit log see it as the user a real cluster would (kubeadm's names).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LIFETIME = datetime.timedelta(days=7)
SERVICE_IP = "10.96.0.1"  # the first address of the service range: `kubernetes.default.svc`


@dataclasses.dataclass(frozen=True)
class Identity:
    """A client of the API server: its user name and groups (the certificate's CN and O)."""

    user: str
    groups: tuple[str, ...] = ()


ADMIN = Identity("kubernetes-admin", ("system:masters",))
CONTROLLER_MANAGER = Identity("system:kube-controller-manager")
SCHEDULER = Identity("system:kube-scheduler")
KWOK = Identity("kwok", ("system:masters",))  # plays every kubelet, so it may touch every node and pod


@dataclasses.dataclass(frozen=True)
class Files:
    ca: pathlib.Path
    key: pathlib.Path  # private key: TLS, client certificates, service-account signing
    public_key: pathlib.Path  # for verifying service-account tokens
    serving: pathlib.Path  # the API server's certificate

    def client(self, identity: Identity) -> pathlib.Path:
        return self.ca.parent / f"{identity.user.replace(':', '-')}.crt"


def write(folder: pathlib.Path, identities: tuple[Identity, ...]) -> Files:
    """Create the CA, the key, the API server's certificate and one client certificate per identity."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # clock skew of children
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelrelease-test-ca")])
    ca = (
        _builder(ca_name, ca_name, key, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    files = Files(
        ca=folder / "ca.crt",
        key=folder / "key.pem",
        public_key=folder / "key.pub",
        serving=folder / "apiserver.crt",
    )
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key.chmod(0o600)
    files.public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    serving_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    serving = (
        _builder(serving_name, ca_name, key, now)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    files.serving.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    for identity in identities:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, identity.user)]
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in identity.groups]
        client = (
            _builder(x509.Name(attributes), ca_name, key, now)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )
        files.client(identity).write_bytes(client.public_bytes(serialization.Encoding.PEM))
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + LIFETIME)
    )

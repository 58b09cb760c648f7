"""A private OpenLDAP `slapd` for tests: its own config, MDB databases and STARTTLS certificate."""

import datetime
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3.core.exceptions import LDAPException

from tests.support.ports import free_port
from tests.support.wait import wait_until

BASE_DN = "dc=example,dc=com"
EMPTY_BASE_DN = "dc=empty,dc=com"
"""A second tree whose `cn=users,cn=accounts` holds nobody."""
BIND_DN = f"uid=gateway,cn=sysaccounts,cn=etc,{BASE_DN}"
USERS = ("alice", "bob", "carol", "dave")
"""Persons under `cn=users,cn=accounts,dc=example,dc=com`."""
PRESERVED = ("erin",)
"""Persons outside the active users container (FreeIPA's preserved users)."""
DATABASES = {BASE_DN: "example", EMPTY_BASE_DN: "empty"}
"""Each suffix and the directory of its MDB database."""
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")


@dataclass(frozen=True)
class Certificates:
    """A self-signed CA and a server certificate it signed, as PEM files."""

    ca: Path
    server: Path
    key: Path


def make_certificates(directory: Path, host: str = "localhost") -> Certificates:
    """Write a CA and a server certificate for `host` (and 127.0.0.1 for `localhost`) into
    `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qgw test LDAP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host)]
                + (
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                    if host == "localhost"
                    else []
                )
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.server.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _config(directory: Path, certificates: Certificates, password: str) -> str:
    includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
    databases = "".join(
        f"""
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw {password}
directory {directory / name}
index objectClass,uid eq
"""
        for suffix, name in DATABASES.items()
    )
    return f"""{includes}
pidfile {directory / "slapd.pid"}
argsfile {directory / "slapd.args"}
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {certificates.ca}
TLSCertificateFile {certificates.server}
TLSCertificateKeyFile {certificates.key}
security tls=1
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
{databases}"""


def _entries(password: str) -> dict[str, str]:
    """LDIF per suffix: the FreeIPA-like tree, the service account and the users."""
    example = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: ex\n",
        f"dn: cn=accounts,{BASE_DN}\nobjectClass: organizationalRole\ncn: accounts\n",
        f"dn: cn=users,cn=accounts,{BASE_DN}\nobjectClass: organizationalRole\ncn: users\n",
        f"dn: cn=etc,{BASE_DN}\nobjectClass: organizationalRole\ncn: etc\n",
        f"dn: cn=sysaccounts,cn=etc,{BASE_DN}\nobjectClass: organizationalRole\ncn: sysaccounts\n",
        f"dn: cn=preserved,{BASE_DN}\nobjectClass: organizationalRole\ncn: preserved\n",
        f"dn: {BIND_DN}\nobjectClass: account\nobjectClass: simpleSecurityObject\n"
        f"uid: gateway\nuserPassword: {password}\n",
    ]
    example += [_person(f"uid={uid},cn=users,cn=accounts,{BASE_DN}", uid) for uid in USERS]
    example += [_person(f"uid={uid},cn=preserved,{BASE_DN}", uid) for uid in PRESERVED]
    empty = [
        f"dn: {EMPTY_BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: empty\no: e\n",
        f"dn: cn=accounts,{EMPTY_BASE_DN}\nobjectClass: organizationalRole\ncn: accounts\n",
        f"dn: cn=users,cn=accounts,{EMPTY_BASE_DN}\nobjectClass: organizationalRole\ncn: users\n",
    ]
    return {BASE_DN: "\n".join(example), EMPTY_BASE_DN: "\n".join(empty)}


def _person(dn: str, uid: str) -> str:
    return (
        f"dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {uid}\n"
        f"cn: {uid.title()}\nsn: {uid.title()}\nuidNumber: 1000\ngidNumber: 1000\n"
        f"homeDirectory: /home/{uid}\n"
    )


def slapd_installed() -> bool:
    """True when Debian's slapd is on PATH or in /usr/sbin."""
    return shutil.which("slapd") is not None or Path("/usr/sbin/slapd").exists()


class PrivateSlapd:
    """`slapd` on a free loopback port, configured by a slapd.conf in its own directory.

    The server requires TLS for everything but STARTTLS itself (`security tls=1`) and logs
    every operation (`-d stats`) to `log`, which tests read to see the searches it answered.
    """

    def __init__(
        self, bind_password: str = "gateway-test-password", certificate_host: str = "localhost"
    ) -> None:
        if not slapd_installed():
            raise RuntimeError("slapd is not installed (apt-get install slapd ldap-utils)")
        self.bind_password = bind_password
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="qgw-test-slapd-"))
        self.certificates = make_certificates(self._dir, certificate_host)
        self._checks_host = certificate_host == "localhost"
        self._conf = self._dir / "slapd.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "slapd.log"

    @property
    def url(self) -> str:
        """The ldap:// address, by the host name the certificate names."""
        return f"ldap://localhost:{self.port}"

    @property
    def log(self) -> str:
        """What slapd logged so far (operations, one per line)."""
        return self._log.read_text(errors="replace")

    def searches(self, base: str = f"cn=users,cn=accounts,{BASE_DN}") -> list[str]:
        """The filters of every search under `base` slapd received, in order."""
        return [
            line.split('filter="', 1)[1].rsplit('"', 1)[0]
            for line in self.log.splitlines()
            if f' SRCH base="{base}"' in line and 'filter="' in line
        ]

    def binds(self) -> int:
        """How many binds as the service account slapd received."""
        return sum(f' BIND dn="{BIND_DN}" method=' in line for line in self.log.splitlines())

    def start(self) -> "PrivateSlapd":
        """Load the databases (slapadd), start slapd and wait until it accepts STARTTLS."""
        admin = "admin-" + self.bind_password
        self._conf.write_text(_config(self._dir, self.certificates, admin))
        for name in DATABASES.values():
            (self._dir / name).mkdir(exist_ok=True)
        for suffix, ldif in _entries(self.bind_password).items():
            loaded = subprocess.run(
                [_slapd_tool("slapadd"), "-f", str(self._conf), "-b", suffix],
                input=ldif.encode(),
                capture_output=True,
            )
            if loaded.returncode != 0:
                raise RuntimeError(f"slapadd {suffix}: {loaded.stderr.decode(errors='replace')}")
        return self.resume()

    def resume(self) -> "PrivateSlapd":
        """Start slapd on its port with the databases as they are."""
        log = self._log.open("ab")
        self._process = subprocess.Popen(
            [
                *(_slapd_tool("slapd"), "-f", str(self._conf)),
                *("-h", f"ldap://127.0.0.1:{self.port}/", "-d", "stats"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self.ready, timeout=30, what=f"slapd on port {self.port}")
        return self

    def ready(self) -> bool:
        """True when a STARTTLS bind as the service account works."""
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"slapd exited with {self._process.returncode}: {self.log[-2000:]}")
        try:
            connection = self.connection(start_tls=True)
        except LDAPException:
            return False
        connection.unbind()
        return True

    def connection(self, start_tls: bool, password: str | None = None) -> ldap3.Connection:
        """An independent ldap3 connection bound as the service account (TLS when asked)."""
        tls = ldap3.Tls(
            ca_certs_file=str(self.certificates.ca),
            validate=ssl.CERT_REQUIRED,
            valid_names=None if self._checks_host else ["*"],  # a mismatched host, on purpose
        )
        server = ldap3.Server("localhost", port=self.port, tls=tls, connect_timeout=2)
        connection = ldap3.Connection(
            server, user=BIND_DN, password=password or self.bind_password, receive_timeout=5
        )
        connection.open()
        if start_tls:
            connection.start_tls()
        connection.bind()
        return connection

    def stop(self) -> None:
        """Stop slapd (the databases stay for `resume`)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> "PrivateSlapd":
        try:
            return self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def _slapd_tool(name: str) -> str:
    """The path of slapd or one of its tools (in /usr/sbin, often not on a user's PATH)."""
    return shutil.which(name) or f"/usr/sbin/{name}"

"""Test certificates made with the openssl command (in the test, into a temporary folder).

make_certs(folder) returns a Certs with PEM paths:
  ca, ca_key          the test CA
  server, server_key  a server certificate from the CA for 127.0.0.1 and localhost (SAN IP, DNS)
  server2, server2_key  another one (rotation: a different serial and subject)
  client, client_key  a client certificate from the CA (extendedKeyUsage clientAuth)
  other_ca            another CA, which nothing trusts
  untrusted, untrusted_key  a server certificate for 127.0.0.1 from other_ca
  other_client, other_client_key  a client certificate from other_ca
  expired, expired_key  a server certificate from the CA whose validity ended in 2020 (made with
                      `openssl ca -startdate/-enddate`: Debian 12's openssl 3.0 has no
                      `x509 -not_before`, and `-days` cannot go negative)
Keys are EC P-256, unencrypted.
"""

import pathlib
import secrets
import subprocess
from dataclasses import dataclass

SAN = "IP:127.0.0.1,DNS:localhost"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _key_and_csr(folder, name, cn):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=folder)


def _make_ca(folder, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "3", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def _sign(folder, name, ca, cn, usage):
    """A leaf certificate signed by ca, valid from now for 3 days."""
    _key_and_csr(folder, name, cn)
    ext = folder / f"{name}.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   f"extendedKeyUsage={usage}\n"
                   + (f"subjectAltName={SAN}\n" if usage == "serverAuth" else ""))
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-set_serial", str(secrets.randbits(62) + 1), "-days", "3",
             "-extfile", ext.name, "-out", f"{name}.pem", cwd=folder)


def _sign_expired(folder, name, ca, cn):
    """A server certificate whose validity ended long ago, through `openssl ca`."""
    _key_and_csr(folder, name, cn)
    db = folder / "ca_db"
    db.mkdir(exist_ok=True)
    (db / "index.txt").write_text("")
    (db / "serial").write_text("1000\n")
    conf = folder / "ca.cnf"
    conf.write_text(f"""[ca]
default_ca = d
[d]
database = {db}/index.txt
new_certs_dir = {db}
serial = {db}/serial
default_md = sha256
policy = p
unique_subject = no
x509_extensions = ext
[p]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {SAN}
""")
    _openssl("ca", "-config", conf.name, "-batch", "-notext", "-cert", f"{ca}.pem",
             "-keyfile", f"{ca}.key", "-in", f"{name}.csr", "-out", f"{name}.pem",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=folder)


@dataclass
class Certs:
    folder: pathlib.Path

    def path(self, name):
        return str(self.folder / name)

    def pem(self, name):
        return (self.folder / name).read_bytes()

    def __getattr__(self, attr):
        if attr.endswith("_key"):
            return self.path(attr[:-4] + ".key")
        return self.path(attr + ".pem")


def make_certs(folder):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _make_ca(folder, "ca", "wigeon test CA")
    _make_ca(folder, "other_ca", "another CA")
    _sign(folder, "server", "ca", "wigeon test server", "serverAuth")
    _sign(folder, "server2", "ca", "wigeon test server, rotated", "serverAuth")
    _sign(folder, "client", "ca", "wigeon test client", "clientAuth")
    _sign(folder, "untrusted", "other_ca", "untrusted server", "serverAuth")
    _sign(folder, "other_client", "other_ca", "client of another CA", "clientAuth")
    _sign_expired(folder, "expired", "ca", "expired server")
    return Certs(folder)

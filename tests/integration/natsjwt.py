"""NATS decentralized auth for tests, written on python3-cryptography (Debian
has no `nsc`): nkeys (Ed25519 keys in NATS's base32 + CRC-16 form), operator,
account and user JWTs (alg "ed25519-nkey"), a user `.creds` file, and the
nats-server configuration lines that trust them (operator mode, memory
resolver, JetStream enabled for the account)."""
import base64
import hashlib
import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3

UNLIMITED = -1


def _crc16(data):
    """CRC-16/XMODEM, as nkeys checksums its keys."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _b32(raw):
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class NKey:
    """An Ed25519 key pair of one nkey kind (operator, account or user)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.private = ed25519.Ed25519PrivateKey.generate()
        raw_public = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = _b32(bytes([prefix]) + raw_public)

    @property
    def seed(self):
        raw = self.private.private_bytes(serialization.Encoding.Raw,
                                         serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
        return _b32(bytes([PREFIX_SEED | (self.prefix >> 5), (self.prefix & 31) << 3]) + raw)


def _jwt(issuer, subject, name, nats):
    """A JWT about <subject> (a public nkey) signed by <issuer> (an NKey)."""
    claims = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject,
              "nats": nats}
    claims["jti"] = base64.b32encode(
        hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()).decode().rstrip("=")
    head = _b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = issuer.private.sign((head + "." + body).encode())
    return head + "." + body + "." + _b64url(signature)


class Trust:
    """One operator with one JetStream-enabled account and the system account
    JetStream needs; users made on demand."""

    def __init__(self):
        self.operator = NKey(PREFIX_OPERATOR)
        self.account = NKey(PREFIX_ACCOUNT)
        self.system = NKey(PREFIX_ACCOUNT)
        self.operator_jwt = _jwt(self.operator, self.operator.public, "moat-test-operator",
                                 {"system_account": self.system.public, "type": "operator",
                                  "version": 2})
        self.system_jwt = _jwt(self.operator, self.system.public, "SYS",
                               {"type": "account", "version": 2})
        limits = {"subs": UNLIMITED, "data": UNLIMITED, "payload": UNLIMITED,
                  "imports": UNLIMITED, "exports": UNLIMITED, "wildcards": True,
                  "conn": UNLIMITED, "leaf": UNLIMITED, "mem_storage": UNLIMITED,
                  "disk_storage": UNLIMITED, "streams": UNLIMITED, "consumer": UNLIMITED}
        self.account_jwt = _jwt(self.operator, self.account.public, "moat-test-account",
                                {"limits": limits, "type": "account", "version": 2})

    def user_creds(self, name, signer=None):
        """A `.creds` file's text for a new user of the account (signed by
        <signer>, the account's key unless given)."""
        user = NKey(PREFIX_USER)
        token = _jwt(signer or self.account, user.public, name,
                     {"pub": {}, "sub": {}, "subs": UNLIMITED, "data": UNLIMITED,
                      "payload": UNLIMITED, "type": "user", "version": 2})
        return ("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
                % (token, user.seed))

    def server_config(self, operator_jwt_path):
        """nats-server configuration lines trusting this operator and account."""
        return ('operator: "%s"\nsystem_account: %s\nresolver: MEMORY\n'
                'resolver_preload: {\n  %s: "%s"\n  %s: "%s"\n}\n'
                % (operator_jwt_path, self.system.public, self.account.public,
                   self.account_jwt, self.system.public, self.system_jwt))

#!/usr/bin/python3
"""Writes the seed corpus of the HPKE Open fuzzer into corpus/hpke_open/.

Layout (see fuzz_hpke_open.c): byte 0 bit 0 = 1 for RFC 9180 A.1
(AES-128-GCM), 0 for A.2 (ChaCha20Poly1305); byte 1 info length; byte 2 aad
length; enc (32 bytes); info; aad; ciphertext. The "rfc-*" seeds are the
RFC's sequence-0 encryptions, which open; the others must be refused.
"""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "hpke_open")
INFO = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e")
AAD = b"Count-0"
A1_ENC = bytes.fromhex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
A1_CT = bytes.fromhex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
                      "6d8770ac83d07bea87e13c512a")
A2_ENC = bytes.fromhex("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
A2_CT = bytes.fromhex("1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db"
                      "21993c62ce81883d2dd1b51a28")


def seed(a1, enc, info, aad, ct):
    return bytes([1 if a1 else 0, len(info), len(aad)]) + enc + info + aad + ct


SEEDS = {
    "rfc-a1-seq0": seed(True, A1_ENC, INFO, AAD, A1_CT),
    "rfc-a2-seq0": seed(False, A2_ENC, INFO, AAD, A2_CT),
    "a2-ct-under-a1-key": seed(True, A2_ENC, INFO, AAD, A2_CT),
    "a2-wrong-aad": seed(False, A2_ENC, INFO, b"Count-1", A2_CT),
    "a2-tag-only": seed(False, A2_ENC, INFO, AAD, A2_CT[-16:]),
    "a2-short-ct": seed(False, A2_ENC, b"", b"", A2_CT[:15]),
    "low-order-enc-zero": seed(False, bytes(32), INFO, AAD, A2_CT),
    "low-order-enc-one": seed(True, b"\x01" + bytes(31), b"", b"", A1_CT),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)

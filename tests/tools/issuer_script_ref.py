#!/usr/bin/env python3
"""Independent reference for kortvagt's issuer script commands (issue 12).

Written from the public texts, not from kortvagt's C code:
  - EMV Book 2 A1.4.1 (ICC master key option A), A1.4.2 (option B),
    A1.3.1 (common session key: F = R with byte 2 = F0, G = R with byte 2 = 0F),
    A1.2 / ISO/IEC 9797-1 MAC algorithm 3 with padding method 2,
    §9.2 (secure messaging for integrity, format 2: the MAC ends the data field,
    Lc counts it), §9.3 (confidentiality: the PIN data enciphered under SK_SMC);
  - EMV Book 3 §6.5.12.2 (plaintext PIN block: 2N, PIN digits, F filler);
  - the per-CVN methods as kortvagt documents them in README "Issuer scripts"
    (Visa: R = ATC || 00*6, MAC input header || ATC || ARQC || data, PIN data
    3DES-ECB(pad2(L || block)); Mastercard: R = ARQC, MAC input header || data,
    PIN data 3DES-CBC(block), IV 0; CCD 5: R = ARQC, header || data,
    3DES-CBC(pad2(block)), IV 0).

Uses python3-cryptography only. Sub-commands:
  selftest      check the building blocks against published examples
  vectors       print the known-answer rows of tests/unit/test_issuer_script.c
  check         verify the 71/72 template(s) printed by `kortvagt script build`
                (MAC of every command; with --pin-stdin the PIN CHANGE data
                decipher to the PIN given on stdin); prints "ok" or the fault
  batch FILE    the same for many cases, one a line (the integration test)
"""

import argparse
import hashlib
import sys

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 keeps TripleDES under decrepit; Debian 12 ships 38
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:
    TripleDES = algorithms.TripleDES


# ---- primitives -------------------------------------------------------------

def tdes_ecb(key16, data):
    e = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()


def tdes_ecb_dec(key16, data):
    d = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).decryptor()
    return d.update(data) + d.finalize()


def tdes_cbc(key16, data, iv=bytes(8)):
    e = Cipher(TripleDES(key16 + key16[:8]), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def tdes_cbc_dec(key16, data, iv=bytes(8)):
    d = Cipher(TripleDES(key16 + key16[:8]), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def des_ecb(key8, data):
    # single DES = 3DES with K1 = K2 = K3
    return tdes_ecb(key8 + key8, data)


def aes_ecb(key, data):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()


def aes_cbc(key, data, iv=bytes(16)):
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def aes_cbc_dec(key, data, iv=bytes(16)):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def aes_cmac(key, data):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def pad2(data):
    """ISO/IEC 9797-1 padding method 2: 80 then zeros to a multiple of 8."""
    data = data + b"\x80"
    while len(data) % 8:
        data += b"\x00"
    return data


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def mac_alg3(key16, data):
    """ISO/IEC 9797-1 MAC algorithm 3 (DES CBC under K_A, last block 3DES), padding 2."""
    a = key16[:8]
    msg = pad2(data)
    h = bytes(8)
    blocks = [msg[i:i + 8] for i in range(0, len(msg), 8)]
    for blk in blocks[:-1]:
        h = des_ecb(a, xor(h, blk))
    return tdes_ecb(key16, xor(h, blocks[-1]))


def kcv(key16):
    return tdes_ecb(key16, bytes(8))[:3]


# ---- EMV key derivation -----------------------------------------------------

def mk_input_a(pan, psn):
    digits = (pan + psn)[-16:].rjust(16, "0")
    return bytes.fromhex(digits)


def mk_input_b(pan, psn):
    if len(pan) <= 16:
        return mk_input_a(pan, psn)
    digits = pan + psn
    if len(digits) % 2:
        digits = "0" + digits
    h = hashlib.sha1(bytes.fromhex(digits)).hexdigest().upper()
    dec = "".join(c for c in h if c.isdigit())
    if len(dec) < 16:
        dec += "".join(str("ABCDEF".index(c)) for c in h if c in "ABCDEF")
    return bytes.fromhex(dec[:16])


def derive_icc_mk(imk, pan, psn, option):
    y = mk_input_a(pan, psn) if option == "A" else mk_input_b(pan, psn)
    left = tdes_ecb(imk, y)
    right = tdes_ecb(imk, xor(y, b"\xff" * 8))
    return left + right


def derive_csk(mk, r):
    f = r[:2] + b"\xf0" + r[3:]
    g = r[:2] + b"\x0f" + r[3:]
    return tdes_ecb(mk, f) + tdes_ecb(mk, g)


# ---- the per-CVN secure-messaging methods (README "Issuer scripts") ---------

METHODS = {
    10: ("A", "atc", True, "visa"),
    18: ("B", "atc", True, "visa"),
    22: ("B", "atc", True, "visa"),
    16: ("A", "ac", False, "mc"),
    17: ("A", "ac", False, "mc"),
    20: ("A", "ac", False, "mc"),
    21: ("A", "ac", False, "mc"),
    5: ("A", "ac", False, "emv"),
    # CCD 6: the AES-128 forms of Book 2 A1.4.1 / A1.3.1 for a 16-byte block
    # (ICC MK = AES(IMK)[Y || Y^FF..], SK = AES(MK)[R || 00*8, byte 3 = F0]),
    # AES-CMAC, AES-CBC
    # CCD 6 (AES) has no script method in kortvagt: the key ceremony keeps
    # imk-smi / imk-smc DES2. The AES forms below (Book 2 A1.4.1 / A1.3.1 for a
    # 16-byte block: ICC MK = AES(IMK)[Y || Y^FF..], SK = AES(MK)[R || 00*8,
    # byte 3 = F0], AES-CMAC, AES-CBC) are what the virtual card checks.
    6: ("A", "ac", False, "aes"),
}


def is_aes(cvn):
    return METHODS[cvn][3] == "aes"


def sm_mac(sk, cvn, data):
    return aes_cmac(sk, data) if is_aes(cvn) else mac_alg3(sk, data)


def session_key(imk, cvn, pan, psn, atc, arqc):
    option, rkind, _, _ = METHODS[cvn]
    r = atc + bytes(6) if rkind == "atc" else arqc
    if is_aes(cvn):
        y = mk_input_a(pan, psn) if option == "A" else mk_input_b(pan, psn)
        mk = aes_ecb(imk, y + xor(y, b"\xff" * 8))
        f1 = r[:2] + b"\xf0" + r[3:] + bytes(8)
        return aes_ecb(mk, f1)
    mk = derive_icc_mk(imk, pan, psn, option)
    return derive_csk(mk, r)


def pin_block(pin):
    s = "2%X%s" % (len(pin), pin)
    s = s.ljust(16, "F")
    return bytes.fromhex(s)


def encipher_pin(sk_smc, cvn, pin):
    enc = METHODS[cvn][3]
    pb = pin_block(pin)
    if enc == "visa":
        return tdes_ecb(sk_smc, pad2(bytes([len(pb)]) + pb))
    if enc == "mc":
        return tdes_cbc(sk_smc, pb)
    if enc == "aes":
        return aes_cbc(sk_smc, pb + b"\x80" + bytes(7))
    return tdes_cbc(sk_smc, pad2(pb))


def decipher_pin(sk_smc, cvn, data):
    enc = METHODS[cvn][3]
    if enc == "visa":
        plain = tdes_ecb_dec(sk_smc, data)
        if plain[0] != 8:
            raise ValueError("length byte %02X, want 08" % plain[0])
        pb = plain[1:9]
    elif enc == "mc":
        pb = tdes_cbc_dec(sk_smc, data)
    elif enc == "aes":
        pb = aes_cbc_dec(sk_smc, data)[:8]
    else:
        pb = tdes_cbc_dec(sk_smc, data)[:8]
    n = pb[0] & 0x0F
    if pb[0] >> 4 != 2 or not 4 <= n <= 12:
        raise ValueError("not a PIN block")
    return pb.hex().upper()[2:2 + n]


HEADERS = {
    "pin-unblock": "84240000",
    "pin-change": "84240002",
    "app-block": "841E0000",
    "app-unblock": "84180000",
    "card-block": "84160000",
}


def build_command(imk_smi, imk_smc, cvn, pan, psn, atc, arqc, kind, pin=None, p1p2=None,
                  data=b"", mac_len=8):
    """The whole C-APDU of one issuer script command."""
    if kind == "put-data":
        hdr = bytes([0x04, 0xDA]) + p1p2
    elif kind == "update-record":
        hdr = bytes([0x04, 0xDC]) + p1p2
    else:
        hdr = bytes.fromhex(HEADERS[kind])
    if kind == "pin-change":
        sk_smc = session_key(imk_smc, cvn, pan, psn, atc, arqc)
        data = encipher_pin(sk_smc, cvn, pin)
    lc = len(data) + mac_len
    head = hdr + bytes([lc])
    macin = head + (atc + arqc if METHODS[cvn][2] else b"") + data
    sk_smi = session_key(imk_smi, cvn, pan, psn, atc, arqc)
    return head + data + sm_mac(sk_smi, cvn, macin)[:mac_len]


# ---- BER-TLV (just what scripts need) ---------------------------------------

def tlv_read(buf, i):
    tag = buf[i]
    i += 1
    if tag & 0x1F == 0x1F:
        tag = (tag << 8) | buf[i]
        i += 1
        while buf[i - 1] & 0x80:
            tag = (tag << 8) | buf[i]
            i += 1
    ln = buf[i]
    i += 1
    if ln & 0x80:
        k = ln & 0x7F
        ln = int.from_bytes(buf[i:i + k], "big")
        i += k
    if i + ln > len(buf):
        raise ValueError("TLV runs past the end")
    return tag, buf[i:i + ln], i + ln


def parse_templates(buf):
    out = []
    i = 0
    while i < len(buf):
        tag, val, i = tlv_read(buf, i)
        if tag not in (0x71, 0x72):
            raise ValueError("tag %X is no script template" % tag)
        sid, cmds, j = None, [], 0
        while j < len(val):
            t, v, j = tlv_read(val, j)
            if t == 0x9F18:
                if len(v) != 4 or cmds or sid is not None:
                    raise ValueError("bad 9F18")
                sid = v
            elif t == 0x86:
                cmds.append(v)
            else:
                raise ValueError("tag %X inside a template" % t)
        if not cmds:
            raise ValueError("template without commands")
        out.append((tag, sid, cmds))
    return out


# ---- sub-commands -------------------------------------------------------------

def selftest():
    # Published examples of pyemv (github.com/knovichikhin/pyemv), docstrings of
    # pyemv/sm.py and tests/test_sm.py: MAC algorithm 3 / padding 2, and the chain
    # option A -> common session key -> script MAC.
    k = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    checks = [
        ("MAC alg 3 (pyemv sm.generate_command_mac docstring)",
         mac_alg3(k, bytes.fromhex("8424000008" "FFFF" "1234567890123456")).hex().upper(),
         "E07B8DF1B4184282"),
        ("3DES-CBC one block (pyemv sm.encrypt_command_data docstring)",
         tdes_cbc(k, bytes.fromhex("241234FFFFFFFFFF")).hex().upper(), "9859240AE52820C3"),
        ("ICC MK option A KCV (pyemv tests/test_sm.py)",
         kcv(derive_icc_mk(k, "1234567890123456", "01", "A"))[:2].hex().upper(), "0239"),
        ("CSK KCV, R = ABCDEF1234567890 (pyemv tests/test_sm.py)",
         kcv(derive_csk(derive_icc_mk(k, "1234567890123456", "01", "A"),
                        bytes.fromhex("ABCDEF1234567890")))[:2].hex().upper(), "F088"),
        ("script MAC 8424000008 (pyemv tests/test_sm.py)",
         mac_alg3(derive_csk(derive_icc_mk(k, "1234567890123456", "01", "A"),
                             bytes.fromhex("ABCDEF1234567890")),
                  bytes.fromhex("8424000008")).hex().upper(), "CF323F09A0F6AB9E"),
        ("IMK KCV (pyemv tests/test_sm.py)", kcv(k)[:2].hex().upper(), "08D7"),
        ("AES-CMAC (RFC 4493 example 2)",
         aes_cmac(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"),
                  bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")).hex().upper(),
         "070A16B46B4D4144F79BDD9DD04A287C"),
    ]
    bad = 0
    for name, got, want in checks:
        ok = got == want
        bad += not ok
        print("%-4s %s: %s%s" % ("ok" if ok else "FAIL", name, got, "" if ok else " want " + want))
    return 1 if bad else 0


# The lab's public test keys (scripts/lab.sh, TEST ONLY).
LAB_SMI = "4B3A2918F7E6D5C4C4D5E6F718293A4B"
LAB_SMC = "9A8B7C6D5E4F30211203F4E5D6C7B8A9"
# AES-128 issuer master keys for CVN 6 rows, should the ceremony allow them (TEST ONLY)
AES_SMI = "00112233445566778899AABBCCDDEEFF"
AES_SMC = "0F0E0D0C0B0A09080706050403020100"

VECTOR_CASES = [
    # name, cvn, pan, psn, atc, arqc, kind, extra
    ("visa10 app-block", 10, "4761739001010010", "01", "0012", "1122334455667788", "app-block", {}),
    ("visa10 pin-change 1234", 10, "4761739001010010", "01", "0012", "1122334455667788",
     "pin-change", {"pin": "1234"}),
    ("visa18 pin-unblock", 18, "4761739001010010", "01", "0012", "1122334455667788",
     "pin-unblock", {}),
    ("visa22 19-digit PAN option B app-unblock", 22, "4761739001010010123", "00", "00A5",
     "A1B2C3D4E5F60718", "app-unblock", {}),
    ("visa18 19-digit PAN pin-change 987654", 18, "4761739001010010123", "00", "00A5",
     "A1B2C3D4E5F60718", "pin-change", {"pin": "987654"}),
    ("mc16 card-block", 16, "5413330089010012", "00", "0027", "0F1E2D3C4B5A6978", "card-block", {}),
    ("mc17 pin-change 4321", 17, "5413330089010012", "00", "0027", "0F1E2D3C4B5A6978",
     "pin-change", {"pin": "4321"}),
    ("mc20 put-data 9F14 mac 4", 20, "5413330089010012", "00", "0027", "0F1E2D3C4B5A6978",
     "put-data", {"p1p2": "9F14", "data": "05", "mac_len": 4}),
    ("mc21 pin-change 123456789012", 21, "5413330089010012", "00", "0027", "0F1E2D3C4B5A6978",
     "pin-change", {"pin": "123456789012"}),
    ("ccd5 update-record SFI 1 rec 2", 5, "6799998900000000013", "01", "0100",
     "8899AABBCCDDEEFF", "update-record",
     {"p1p2": "020C", "data": "70055A03541333"}),
    ("ccd5 pin-change 0000", 5, "6799998900000000013", "01", "0100", "8899AABBCCDDEEFF",
     "pin-change", {"pin": "0000"}),
]


def vectors():
    print("/* generated by tests/tools/issuer_script_ref.py vectors (keys: lab imk-smi, imk-smc) */")
    for name, cvn, pan, psn, atc, arqc, kind, ex in VECTOR_CASES:
        aes = is_aes(cvn)
        smi = bytes.fromhex(AES_SMI if aes else LAB_SMI)
        smc = bytes.fromhex(AES_SMC if aes else LAB_SMC)
        apdu = build_command(smi, smc, cvn, pan, psn, bytes.fromhex(atc), bytes.fromhex(arqc),
                             kind, pin=ex.get("pin"),
                             p1p2=bytes.fromhex(ex["p1p2"]) if "p1p2" in ex else None,
                             data=bytes.fromhex(ex.get("data", "")), mac_len=ex.get("mac_len", 8))
        print('    {"%s", %d, "%s", "%s", "%s", "%s", "%s", "%s", "%s", %d,\n     "%s"},' % (
            name, cvn, pan, psn, atc, arqc, kind, ex.get("pin", ""),
            ex.get("p1p2", "") + ex.get("data", ""), ex.get("mac_len", 0), apdu.hex().upper()))
    return 0


def check_one(imk_smi, imk_smc, cvn, pan, psn, atc, arqc, script, mac_len=8, tag=None,
              sid=None, pin=None):
    """"ok", or what is wrong with the templates in script (hex)."""
    smi, smc = bytes.fromhex(imk_smi), bytes.fromhex(imk_smc)
    atc, arqc = bytes.fromhex(atc), bytes.fromhex(arqc)
    try:
        tpls = parse_templates(bytes.fromhex(script))
    except (ValueError, IndexError) as e:
        return "malformed: %s" % e
    sk_smi = session_key(smi, cvn, pan, psn, atc, arqc)
    for ttag, tid, cmds in tpls:
        if tag and ttag != int(tag, 16):
            return "template %X, want %s" % (ttag, tag)
        if sid and (tid is None or tid.hex().upper() != sid.upper()):
            return "script id %s, want %s" % (tid.hex() if tid else None, sid)
        for c in cmds:
            if len(c) < 5 or c[4] != len(c) - 5:
                return "command %s: Lc does not match" % c.hex()
            head, data, mac = c[:5], c[5:len(c) - mac_len], c[len(c) - mac_len:]
            macin = head + (atc + arqc if METHODS[cvn][2] else b"") + data
            if sm_mac(sk_smi, cvn, macin)[:mac_len] != mac:
                return "command %s: wrong MAC" % c.hex().upper()
            if head[:4] == bytes.fromhex("84240002") and pin is not None:
                sk_smc = session_key(smc, cvn, pan, psn, atc, arqc)
                try:
                    got = decipher_pin(sk_smc, cvn, data)
                except ValueError as e:
                    return "PIN data: %s" % e
                if got != pin:
                    return "PIN data decipher to another PIN"
    return "ok"


def check(a):
    pin = sys.stdin.readline().strip() if a.pin_stdin else None
    res = check_one(a.imk_smi, a.imk_smc, a.cvn, a.pan, a.psn, a.atc, a.arqc, a.script,
                    a.mac_len, a.tag, a.id, pin)
    print(res)
    return 0 if res == "ok" else 1


def batch(path):
    """One case a line: CVN PAN PSN ATC ARQC MAC_LEN TAG ID PIN SCRIPT ("-": none).
    Prints one result line per case (lab keys)."""
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) != 10:
                print("bad case line")
                continue
            opt = [None if x == "-" else x for x in w]
            print(check_one(LAB_SMI, LAB_SMC, int(w[0]), w[1], w[2], w[3], w[4], w[9],
                            int(w[5]), opt[6], opt[7], opt[8]))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest")
    sub.add_parser("vectors")
    b = sub.add_parser("batch")
    b.add_argument("file")
    c = sub.add_parser("check")
    c.add_argument("--imk-smi", default=LAB_SMI)
    c.add_argument("--imk-smc", default=LAB_SMC)
    c.add_argument("--cvn", type=int, required=True)
    c.add_argument("--pan", required=True)
    c.add_argument("--psn", default="00")
    c.add_argument("--atc", required=True)
    c.add_argument("--arqc", required=True)
    c.add_argument("--mac-len", type=int, default=8)
    c.add_argument("--tag", help="71 or 72")
    c.add_argument("--id", help="expected 9F18, hex")
    c.add_argument("--pin-stdin", action="store_true")
    c.add_argument("--script", required=True, help="the templates, hex")
    a = p.parse_args()
    if a.cmd == "selftest":
        return selftest()
    if a.cmd == "vectors":
        return vectors()
    if a.cmd == "batch":
        return batch(a.file)
    return check(a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""An independent second PC/SC client: reads a tag's NDEF message with pyscard (its own
libpcsclite session) and decodes it with ndeflib, sharing no code with Tapkit. Prints
JSON: uid, cc, ndef (hex), url.

- A Type 2 tag (NTAG21x; the reader's PC/SC Part 3 storage-card ATR): READ BINARY
  pseudo-APDUs of its pages, then the TLVs.
- A Type 4 tag (NTAG 424 DNA; any other ATR): what a phone does, ISO SELECT of the NDEF
  application, the CC file, the NDEF file, READ BINARY of NLEN then of the message.
  Each run is one tap: a fresh connection, so a SUN card signs a new message.

usage: pcsc_read_ndef.py "<reader name>"
"""
import json
import sys

import ndef
from smartcard.System import readers

STORAGE_ATR = bytes([0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F])
NDEF_APP = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01]


def ok(conn, apdu, what):
    data, sw1, sw2 = conn.transmit(apdu)
    if (sw1, sw2) != (0x90, 0x00):
        raise SystemExit(f"{what} failed: {sw1:02X} {sw2:02X}")
    return bytes(data)


def read_type2(conn):
    """(uid, cc, message or None) of a Type 2 tag."""

    def read4(page: int) -> bytes:
        data = ok(conn, [0xFF, 0xB0, 0x00, page, 0x10], f"READ BINARY page {page}")
        if len(data) != 16:
            raise SystemExit(f"READ BINARY page {page}: {len(data)} bytes")
        return data

    head = read4(0)
    uid = head[0:3] + head[4:8]
    cc = head[12:16]
    if cc[0] != 0xE1:
        return uid, cc, None
    size = cc[2] * 8
    area = b""
    page = 4
    while len(area) < size:
        area += read4(page)
        page += 4
    area = area[:size]
    # Walk the TLVs (NFC Forum Type 2 Tag spec): skip NULL, lock/memory control, proprietary.
    i = 0
    while i < len(area):
        t = area[i]
        if t == 0x00:
            i += 1
            continue
        if t == 0xFE:
            break
        length = area[i + 1]
        hdr = 2
        if length == 0xFF:
            length = int.from_bytes(area[i + 2 : i + 4], "big")
            hdr = 4
        if t == 0x03:
            return uid, cc, area[i + hdr : i + hdr + length]
        i += hdr + length
    return uid, cc, None


def read_type4(conn):
    """(uid, cc, message or None) of a Type 4 tag, read as a phone reads it."""
    uid = ok(conn, [0xFF, 0xCA, 0x00, 0x00, 0x00], "GET UID")
    ok(conn, [0x00, 0xA4, 0x04, 0x00, len(NDEF_APP)] + NDEF_APP + [0x00], "SELECT NDEF application")
    ok(conn, [0x00, 0xA4, 0x00, 0x0C, 0x02, 0xE1, 0x03], "SELECT CC file")
    cc = ok(conn, [0x00, 0xB0, 0x00, 0x00, 0x0F], "READ CC")
    # The NDEF file control TLV (T=04) names the NDEF file's id.
    if cc[7] != 0x04:
        raise SystemExit(f"CC has no NDEF file TLV: {cc.hex()}")
    ok(conn, [0x00, 0xA4, 0x00, 0x0C, 0x02] + list(cc[9:11]), "SELECT NDEF file")
    nlen = int.from_bytes(ok(conn, [0x00, 0xB0, 0x00, 0x00, 0x02], "READ NLEN"), "big")
    message = ok(conn, [0x00, 0xB0, 0x00, 0x02, nlen], "READ NDEF message") if nlen else None
    return uid, cc, message


def main() -> int:
    name = sys.argv[1]
    matches = [r for r in readers() if str(r) == name]
    if not matches:
        print(json.dumps({"error": f"no reader {name!r}"}))
        return 2
    conn = matches[0].createConnection()
    conn.connect()
    atr = bytes(conn.getATR())
    read = read_type2 if atr.startswith(STORAGE_ATR) else read_type4
    uid, cc, message = read(conn)
    conn.disconnect()
    url = None
    if message:
        records = list(ndef.message_decoder(message))
        if records and isinstance(records[0], ndef.UriRecord):
            url = records[0].iri
    print(json.dumps({"uid": uid.hex().upper(), "cc": cc.hex().upper(),
                      "ndef": message.hex().upper() if message is not None else None, "url": url}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

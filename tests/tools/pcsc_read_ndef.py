#!/usr/bin/env python3
"""An independent second PC/SC client: reads a Type 2 tag with pyscard (its own
libpcsclite session, READ BINARY pseudo-APDUs only) and decodes the NDEF message with
ndeflib, sharing no code with Tapkit. Prints JSON: uid, cc, ndef (hex), url.

usage: pcsc_read_ndef.py "<reader name>"
"""
import json
import sys

import ndef
from smartcard.System import readers


def main() -> int:
    name = sys.argv[1]
    matches = [r for r in readers() if str(r) == name]
    if not matches:
        print(json.dumps({"error": f"no reader {name!r}"}))
        return 2
    conn = matches[0].createConnection()
    conn.connect()

    def read4(page: int) -> bytes:
        data, sw1, sw2 = conn.transmit([0xFF, 0xB0, 0x00, page, 0x10])
        if (sw1, sw2) != (0x90, 0x00) or len(data) != 16:
            raise SystemExit(f"READ BINARY page {page} failed: {sw1:02X} {sw2:02X}")
        return bytes(data)

    head = read4(0)
    uid = head[0:3] + head[4:8]
    cc = head[12:16]
    if cc[0] != 0xE1:
        print(json.dumps({"uid": uid.hex().upper(), "cc": cc.hex().upper(), "url": None}))
        return 0
    size = cc[2] * 8
    area = b""
    page = 4
    while len(area) < size:
        area += read4(page)
        page += 4
    area = area[:size]
    # Walk the TLVs (NFC Forum Type 2 Tag spec): skip NULL, lock/memory control, proprietary.
    i, message = 0, None
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
        value = area[i + hdr : i + hdr + length]
        if t == 0x03:
            message = value
            break
        i += hdr + length
    url = None
    if message:
        records = list(ndef.message_decoder(message))
        if records and isinstance(records[0], ndef.UriRecord):
            url = records[0].iri
    conn.disconnect()
    print(json.dumps({"uid": uid.hex().upper(), "cc": cc.hex().upper(),
                      "ndef": message.hex().upper() if message is not None else None, "url": url}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

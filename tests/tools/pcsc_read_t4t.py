#!/usr/bin/env python3
"""An independent second PC/SC client for Type 4 tags (NTAG 424 DNA): reads the NDEF
file the way a phone does (ISO SELECT of the NDEF application, the CC file, the NDEF
file, READ BINARY of NLEN then of the message) with pyscard, and decodes the message
with ndeflib, sharing no code with Tapkit. Each run is one tap: a fresh connection, so
a SUN card signs a new message. Prints JSON: uid, cc, url.

usage: pcsc_read_t4t.py "<reader name>"
"""
import json
import sys

import ndef
from smartcard.System import readers

NDEF_APP = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01]


def main() -> int:
    name = sys.argv[1]
    matches = [r for r in readers() if str(r) == name]
    if not matches:
        print(json.dumps({"error": f"no reader {name!r}"}))
        return 2
    conn = matches[0].createConnection()
    conn.connect()

    def ok(apdu, what):
        data, sw1, sw2 = conn.transmit(apdu)
        if (sw1, sw2) != (0x90, 0x00):
            raise SystemExit(f"{what} failed: {sw1:02X} {sw2:02X}")
        return bytes(data)

    uid = ok([0xFF, 0xCA, 0x00, 0x00, 0x00], "GET UID")
    ok([0x00, 0xA4, 0x04, 0x00, len(NDEF_APP)] + NDEF_APP + [0x00], "SELECT NDEF application")
    ok([0x00, 0xA4, 0x00, 0x0C, 0x02, 0xE1, 0x03], "SELECT CC file")
    cc = ok([0x00, 0xB0, 0x00, 0x00, 0x0F], "READ CC")
    # The NDEF file control TLV (T=04) names the NDEF file's id.
    if cc[7] != 0x04:
        raise SystemExit(f"CC has no NDEF file TLV: {cc.hex()}")
    fid = list(cc[9:11])
    ok([0x00, 0xA4, 0x00, 0x0C, 0x02] + fid, "SELECT NDEF file")
    nlen = int.from_bytes(ok([0x00, 0xB0, 0x00, 0x00, 0x02], "READ NLEN"), "big")
    message = ok([0x00, 0xB0, 0x00, 0x02, nlen], "READ NDEF message") if nlen else b""
    conn.disconnect()
    url = None
    if message:
        records = list(ndef.message_decoder(message))
        if records and isinstance(records[0], ndef.UriRecord):
            url = records[0].iri
    print(json.dumps({"uid": uid.hex().upper(), "cc": cc.hex().upper(), "url": url}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

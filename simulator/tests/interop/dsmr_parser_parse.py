"""Parses a file of p1sim telegrams with dsmr_parser and prints what it understood, as JSON lines.

Usage: python dsmr_parser_parse.py SPEC FILE [KEY [AUTH_KEY]]

SPEC is a dsmr_parser telegram specification name (V2_2, V3, V4, V5, BELGIUM_FLUVIUS, SWEDEN,
MSN, LUXEMBOURG_SMARTY, Q3D, EON_HUNGARY, SAGEMCOM_T210_D_R, ISKRA_IE). Plain telegrams are
framed with dsmr_parser's own TelegramBuffer, read as Latin-1 as its asyncio protocol (Home
Assistant's path) does, so a gateway's 0xFF padding passes; encrypted frames (general-glo-ciphering
specifications) are split by their length field and handed to the parser hex encoded, as
dsmr_parser's readers do, with AUTH_KEY when given. One JSON line per telegram:
{"ok": true, "lines": [{"obis": "1-0:1.8.1", "values": [{"type": "decimal", "value": "...", "unit": "kWh"}]}]}
or {"ok": false, "error": "..."} when dsmr_parser raised (for example on a CRC mismatch).
"""

import datetime
import decimal
import json
import sys
from binascii import hexlify, unhexlify

from dsmr_parser import telegram_specifications
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.parsers import TelegramParser, _decrypt_without_verification
from dlms_cosem.connection import XDlmsApduFactory


def describe(value):
    if isinstance(value, decimal.Decimal):
        # Fixed point: str() writes a zero with seven decimals as "0E-7".
        return "decimal", format(value, "f")
    if isinstance(value, bool):
        return "str", str(value)
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, datetime.datetime):
        return "datetime", value.isoformat()
    return "str", "" if value is None else str(value)


def lines_of(parser, spec, telegram):
    """Every line a spec object matches, with dsmr_parser's parse of it."""
    out = []
    for obj in spec["objects"]:
        pattern = parser.telegram_specification_regexes[obj["obis_reference"]]
        for match in pattern.findall(telegram):
            parsed = obj["value_parser"].parse(match)
            values = getattr(parsed, "values", None)
            if values is None:
                continue
            line = {"obis": match.split("(", 1)[0].strip(), "name": obj["value_name"], "values": []}
            for v in values:
                if isinstance(v, dict):
                    kind, text = describe(v.get("value"))
                    line["values"].append({"type": kind, "value": text, "unit": v.get("unit")})
            out.append(line)
    return out


def main():
    spec_name, path = sys.argv[1], sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else ""
    auth_key = sys.argv[4] if len(sys.argv) > 4 else ""
    spec = getattr(telegram_specifications, spec_name)
    parser = TelegramParser(spec)
    data = open(path, "rb").read()
    telegrams = []
    if spec.get("general_global_cipher"):
        pos = 0
        while pos + 18 <= len(data):
            length = int.from_bytes(data[pos + 11:pos + 13], "big")
            frame = data[pos:pos + 13 + length]
            telegrams.append(("frame", hexlify(frame).decode()))
            pos += 13 + length
    else:
        buffer = TelegramBuffer()
        buffer.append(data.decode("latin1"))
        telegrams = [("plain", t) for t in buffer.get_all()]
    for kind, telegram in telegrams:
        try:
            if kind == "frame":
                # Decrypts with the authentication key (the spec's own when none is given),
                # verifying the GCM tag, then checks the CRC of the plaintext.
                parser.parse(telegram, encryption_key=key, authentication_key=auth_key, throw_ex=True)
                # The per-line comparison needs the plaintext itself.
                apdu = XDlmsApduFactory.apdu_from_bytes(apdu_bytes=unhexlify(telegram))
                text = _decrypt_without_verification(apdu, unhexlify(key)).decode("ascii")
                lines = lines_of(parser, spec, text)
            else:
                parser.parse(telegram, throw_ex=True)
                lines = lines_of(parser, spec, telegram)
            print(json.dumps({"ok": True, "lines": lines}))
        except Exception as err:  # dsmr_parser raises several types; report them all
            print(json.dumps({"ok": False, "error": "%s: %s" % (type(err).__name__, err)}))


main()

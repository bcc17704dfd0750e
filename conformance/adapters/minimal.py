"""The smallest complete p1sim conformance adapter: a toy P1 decoder written for this example,
fed one case on stdin, printing one JSON line per telegram it accepts.

    p1sim conformance --dut 'python3 conformance/adapters/minimal.py'

To test your own decoder, keep main() and replace decode() with a call into it. This toy one
checks CRCs (DSMR 4 and later), resyncs on `/`, joins the DSMR 2.2/3 continuation line and
knows no encryption, so the suite passes its clean telegrams and fails the encrypted cases (and
the Iskra MT382 that sends no `!`).
"""

import json
import os
import re
import sys

# `/`, anything but another `/`, `!`, and the CRC's hex digits when there are any.
TELEGRAM = re.compile(rb"/[^/]*?!([0-9A-Fa-f]{1,4})?", re.S)
OBJECT = re.compile(r"^([^(]+?)\s*((?:\([^()]*\))+)$")
VALUE = re.compile(r"\(([^()]*)\)")


def crc16(data):
    """CRC-16/ARC over `/` through `!`."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def decode(data, needs_crc):
    """Yields (crc text, [(obis, [(value, unit)])]) for each telegram with a valid CRC."""
    for m in TELEGRAM.finditer(data):
        raw, crc = m.group(0), m.group(1)
        if crc is None and needs_crc or crc is not None and int(crc, 16) != crc16(raw[: -len(crc)]):
            continue
        objects = []
        for line in raw.decode("latin-1").splitlines()[1:-1]:
            if line.startswith("(") and objects:
                objects[-1][1].extend(parse_values(line))
            elif OBJECT.match(line):
                obis, values = OBJECT.match(line).groups()
                objects.append((obis, parse_values(values)))
        yield crc, objects


def parse_values(text):
    return [tuple(v.split("*", 1)) if "*" in v else (v, None) for v in VALUE.findall(text)]


def main():
    needs_crc = os.environ.get("P1SIM_SPEC", "") not in ("DSMR 2.2", "DSMR 3.0", "D0")
    data = sys.stdin.buffer.read()
    for crc, objects in decode(data, needs_crc):
        print(json.dumps({
            "crc": crc.decode() if crc else None,
            "objects": [
                {"obis": obis, "values": [{"value": v, "unit": u} for v, u in values]} for obis, values in objects
            ],
        }))


main()

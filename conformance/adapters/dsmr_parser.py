"""p1sim conformance adapter for dsmr_parser (PyPI dsmr-parser==1.11.2), the decoder behind Home
Assistant's DSMR integration.

It decodes the way dsmr_parser.clients.protocol.DSMRProtocol.data_received does inside Home
Assistant: bytes are decoded as latin-1 into a TelegramBuffer (an EncryptedTelegramBuffer for
Smarty), each telegram must be 7-bit ASCII, and TelegramParser.parse runs with its defaults
(throw_ex off: a line that fails to parse is logged and left out). A telegram counts as accepted
when parse returns; InvalidChecksumError and ParseError are logged and skipped, as the protocol
does. An error the protocol does not catch (a UnicodeError from the ASCII check, a
DecryptionError, any other exception out of parse) tears Home Assistant's connection down; the
adapter models that as an immediate reconnect: the rest of that read is lost and the buffer
starts empty. Input is handed over in 64-byte reads, as a serial port at 115200 baud delivers
it, so the result does not depend on how the transport happened to chunk it.

For each accepted telegram it prints one JSON line in the p1sim decode --json schema: every line
a specification object's regex matches (re-run on the telegram text, as TelegramParser.parse
does), named by its OBIS text, with dsmr_parser's parsed values: Decimal as a string, datetime as
RFC 3339, None as null, units as given.

Environment (see README.md in this directory): P1SIM_SPEC, P1SIM_KEY, P1SIM_AUTH_KEY, P1SIM_TRANSPORT
(stdin, pty with P1SIM_PTY, tcp with P1SIM_TCP), P1SIM_PERSISTENT=1 for one process over many
cases. P1SIM_BAUD is applied to the PTY as a serial reader would.
"""

import datetime
import decimal
import json
import logging
import os
import re
import socket
import sys
import termios
import tty
from binascii import unhexlify

from dsmr_parser import telegram_specifications
from dsmr_parser.clients.telegram_buffer import EncryptedTelegramBuffer, TelegramBuffer
from dsmr_parser.exceptions import DecryptionError, InvalidChecksumError, ParseError
from dsmr_parser.parsers import TelegramParser
from dlms_cosem.connection import XDlmsApduFactory

# The specification a Home Assistant user picks for each meter generation (what `p1sim run`
# prints). dsmr_parser 1.11 reads Luxembourg's encrypted Smarty frames with MSN (LUXEMBOURG_SMARTY
# plus general-glo-ciphering and the fixed authentication key), plaintext Smarty with
# LUXEMBOURG_SMARTY (version 5L).
SPECS = {
    "DSMR 2.2": "V2_2",
    "DSMR 3.0": "V3",
    "DSMR 4.0": "V4",
    "DSMR 4.2": "V4",
    "DSMR 5.0": "V5",
    "e-MUCS": "BELGIUM_FLUVIUS",
    "SE-HAN": "SWEDEN",
    "Smarty": "MSN",
    "D0": "Q3D",
    "E.ON HU": "EON_HUNGARY",
    "Steiermark": "SAGEMCOM_T210_D_R",
    "Iskra IE": "ISKRA_IE",
}
PLAINTEXT_SPECS = {"Smarty": "LUXEMBOURG_SMARTY", "Steiermark": "V5"}

READ_SIZE = 64
BRACKETS = re.compile(r"\(")

log = logging.getLogger("p1sim-adapter")


def text_of(value):
    """A parsed value in the schema: Decimal as text, datetime as RFC 3339, None as null."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        # Fixed point: str() writes a zero with seven decimals (EasyMeter's kWh) as "0E-7".
        return format(value, "f")
    return str(value)


def values_of(parsed):
    """dsmr_parser's value dicts of one parsed line; MaxDemandParser returns a list of peaks."""
    if isinstance(parsed, list):
        out = []
        for peak in parsed:
            out.extend(getattr(peak, "values", []) or [])
        return out
    return getattr(parsed, "values", None) or []


class Session:
    """One connection of Home Assistant's DSMRProtocol to one meter."""

    def __init__(self, spec_name, key, out, auth_key=""):
        if spec_name not in SPECS:
            raise SystemExit("p1sim-adapter: unknown P1SIM_SPEC %r, expected one of %s" % (spec_name, ", ".join(SPECS)))
        name = SPECS[spec_name] if key or spec_name not in PLAINTEXT_SPECS else PLAINTEXT_SPECS[spec_name]
        self.spec = getattr(telegram_specifications, name)
        self.parser = TelegramParser(self.spec)
        self.encrypted = bool(self.spec.get("general_global_cipher"))
        self.key = key
        # The meter's own authentication key; empty: the one the specification carries.
        self.auth_key = auth_key or self.spec.get("authentication_key", "")
        self.out = out
        self.reconnect()

    def reconnect(self):
        self.buffer = EncryptedTelegramBuffer() if self.encrypted else TelegramBuffer()

    def feed(self, data):
        for i in range(0, len(data), READ_SIZE):
            try:
                self.data_received(data[i:i + READ_SIZE])
            except Exception as err:  # what escapes data_received closes Home Assistant's connection
                log.warning("connection lost: %s: %s", type(err).__name__, err)
                self.reconnect()

    def data_received(self, data):
        """DSMRProtocol.data_received."""
        if self.encrypted:
            self.buffer.append(data)
            for telegram in self.buffer.get_all():
                self.handle_telegram(telegram)
            return
        self.buffer.append(data.decode("latin1"))
        for telegram in self.buffer.get_all():
            # The protocol's ASCII check; a UnicodeError escapes data_received.
            telegram = telegram.encode("latin1").decode("ascii")
            self.handle_telegram(telegram)

    def handle_telegram(self, telegram):
        """DSMRProtocol.handle_telegram, printing instead of calling back."""
        try:
            self.parser.parse(telegram, encryption_key=self.key, authentication_key=self.auth_key)
        except DecryptionError:
            # The protocol closes the transport on a decryption error.
            raise
        except InvalidChecksumError as err:
            log.info("%s", err)
            return
        except ParseError as err:
            log.info("failed to parse telegram: %s", err)
            return
        text = self.plaintext(telegram)
        self.out.write(json.dumps(self.report(text)) + "\n")

    def plaintext(self, telegram):
        if not self.encrypted:
            return telegram
        apdu = XDlmsApduFactory.apdu_from_bytes(apdu_bytes=unhexlify(telegram))
        return apdu.to_plain_apdu(unhexlify(self.key), unhexlify(self.auth_key)).decode("ascii")

    def report(self, text):
        """The lines each specification object matches, with dsmr_parser's parse of them."""
        found = {}
        for obj in self.spec["objects"]:
            pattern = self.parser.telegram_specification_regexes[obj["obis_reference"]]
            for match in pattern.finditer(text):
                if match.start() in found:
                    continue
                line = match.group(0)
                try:
                    parsed = obj["value_parser"].parse(line)
                except ParseError:
                    continue  # parse() logged and left this line out
                values = values_of(parsed)
                # dsmr_parser fills in values a line does not carry (an empty log `()` becomes
                # count 0 and no id): report one value per bracket of the line, the last ones.
                brackets = len(BRACKETS.findall(line))
                if len(values) > brackets:
                    values = values[len(values) - brackets:]
                if not values:
                    continue
                found[match.start()] = {
                    "obis": line.split("(", 1)[0].strip(),
                    "values": [
                        {"value": text_of(v.get("value")), "unit": v.get("unit")} for v in values if isinstance(v, dict)
                    ],
                }
        crc = re.search(r"!([0-9A-Fa-f]{1,4})", text)
        return {
            "crc": crc.group(1) if crc else None,
            "crc_ok": True if self.spec["checksum_support"] else None,
            "objects": [found[k] for k in sorted(found)],
        }


def read_all(fd, chunk=4096):
    """Reads until end of input; a hung-up PTY reports EIO instead of EOF."""
    while True:
        try:
            data = os.read(fd, chunk)
        except OSError as err:
            if err.errno == 5:  # EIO: the runner closed the PTY's master
                return
            raise
        if not data:
            return
        yield data


def open_serial(path, baud):
    """Opens a PTY like a serial port: raw, at the meter's baud rate, without flushing."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    speed = getattr(termios, "B%d" % baud, None)
    if speed is not None:
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


def one_case(out):
    session = Session(
        os.environ.get("P1SIM_SPEC", ""), os.environ.get("P1SIM_KEY", ""), out, os.environ.get("P1SIM_AUTH_KEY", "")
    )
    transport = os.environ.get("P1SIM_TRANSPORT", "stdin")
    if transport == "stdin":
        for data in read_all(sys.stdin.buffer.fileno()):
            session.feed(data)
    elif transport == "pty":
        fd = open_serial(os.environ["P1SIM_PTY"], int(os.environ.get("P1SIM_BAUD", "115200")))
        for data in read_all(fd):
            session.feed(data)
        os.close(fd)
    elif transport == "tcp":
        host, port = os.environ["P1SIM_TCP"].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as s:
            while True:
                data = s.recv(4096)
                if not data:
                    break
                session.feed(data)
    else:
        raise SystemExit("p1sim-adapter: unknown P1SIM_TRANSPORT %r" % transport)


def persistent(out):
    """Many cases over stdin: a header line, the bytes, then the answer up to P1SIM-END."""
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header:
            return
        fields = header.decode("utf-8").rstrip("\n").split("\t")
        if fields[0] != "P1SIM-CASE" or len(fields) != 8:
            raise SystemExit("p1sim-adapter: expected a P1SIM-CASE header, got %r" % header[:200])
        name, size, spec, _baud, _framing, key, auth_key = fields[1:]
        data = stdin.read(int(size))
        Session(spec, "" if key == "-" else key, out, "" if auth_key == "-" else auth_key).feed(data)
        out.write("P1SIM-END\t%s\n" % name)
        out.flush()


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    out = sys.stdout
    if os.environ.get("P1SIM_PERSISTENT") == "1":
        persistent(out)
    else:
        one_case(out)
    out.flush()


main()

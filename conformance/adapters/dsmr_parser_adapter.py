"""p1sim conformance adapter for dsmr_parser (PyPI dsmr-parser==1.11.2), the decoder behind Home
Assistant's DSMR integration and dsmr-reader.

It decodes the way dsmr_parser.clients.protocol.DSMRProtocol.data_received does inside Home
Assistant: bytes are decoded as latin-1 into a TelegramBuffer (an EncryptedTelegramBuffer for
Smarty), each telegram must be 7-bit ASCII, and TelegramParser.parse runs with its defaults
(throw_ex off: a line that fails to parse is logged and left out). Encrypted frames are
decrypted by parse() itself, with the key and the authentication key (the meter's own where
P1SIM_AUTH_KEY gives one, else the specification's), as the protocol passes them. A telegram counts as accepted when parse returns; InvalidChecksumError and
ParseError are logged and skipped, as the protocol does. An error the protocol does not catch (a
UnicodeError from the ASCII check, a DecryptionError, any other exception out of parse) tears
Home Assistant's connection down; the adapter models that as an immediate reconnect: the rest of
that read is lost and the buffer starts empty. Input is handed over in 64-byte reads, as a serial
port at 115200 baud delivers it, so the result does not depend on how the transport chunked it.

For each accepted telegram it prints one JSON line in the p1sim decode --json schema, built from
the Telegram object parse() returned and nothing else: every object it holds (the M-Bus ones per
device), named by what dsmr_parser calls it (ELECTRICITY_USED_TARIFF_1 is 1-0:1.8.1) with the A
and B groups (the channel) from the object's obis_id_code, and the values and units as parsed:
Decimal as text, datetime as RFC 3339, None as null. Two dsmr_parser names cover two OBIS codes
each (MBUS_METER_READING: 24.2.1 or, for Belgian gas, 24.2.3; MBUS_EQUIPMENT_IDENTIFIER: 96.1.0
or, in Belgium, 96.1.1); they are reported under the code the selected specification uses for
that device. A name the table below does not know is logged and left out.

Run it by its path: python3 conformance/adapters/dsmr_parser_adapter.py (with dsmr-parser
installed), or let p1sim set it up: p1sim conformance --dut dsmr_parser.

Environment (see README.md in this directory): P1SIM_SPEC, P1SIM_KEY, P1SIM_AUTH_KEY, P1SIM_TRANSPORT
(stdin, pty with P1SIM_PTY, tcp with P1SIM_TCP), P1SIM_PERSISTENT=1 for one process over many
cases. P1SIM_BAUD is applied to the PTY as a serial reader would.
"""

import datetime
import decimal
import json
import logging
import os
import socket
import sys
import termios
import tty

from dsmr_parser import telegram_specifications
from dsmr_parser.clients.telegram_buffer import EncryptedTelegramBuffer, TelegramBuffer
from dsmr_parser.exceptions import DecryptionError, InvalidChecksumError, ParseError
from dsmr_parser.objects import MbusDevice, ProfileGenericObject
from dsmr_parser.parsers import TelegramParser

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

# What each dsmr_parser object name means, as the C.D.E groups of its OBIS code.
MEANING = {
    "P1_MESSAGE_HEADER": "0.2.8",
    "P1_MESSAGE_TIMESTAMP": "1.0.0",
    "ELECTRICITY_USED_TARIFF_1": "1.8.1",
    "ELECTRICITY_USED_TARIFF_2": "1.8.2",
    "ELECTRICITY_USED_TARIFF_3": "1.8.3",
    "ELECTRICITY_USED_TARIFF_4": "1.8.4",
    "ELECTRICITY_DELIVERED_TARIFF_1": "2.8.1",
    "ELECTRICITY_DELIVERED_TARIFF_2": "2.8.2",
    "ELECTRICITY_DELIVERED_TARIFF_3": "2.8.3",
    "ELECTRICITY_DELIVERED_TARIFF_4": "2.8.4",
    "ELECTRICITY_IMPORTED_TOTAL": "1.8.0",
    "ELECTRICITY_EXPORTED_TOTAL": "2.8.0",
    "ELECTRICITY_REACTIVE_IMPORTED_TOTAL": "3.8.0",
    "ELECTRICITY_REACTIVE_IMPORTED_TARIFF_1": "3.8.1",
    "ELECTRICITY_REACTIVE_IMPORTED_TARIFF_2": "3.8.2",
    "ELECTRICITY_REACTIVE_EXPORTED_TOTAL": "4.8.0",
    "ELECTRICITY_REACTIVE_EXPORTED_TARIFF_1": "4.8.1",
    "ELECTRICITY_REACTIVE_EXPORTED_TARIFF_2": "4.8.2",
    "CURRENT_ELECTRICITY_USAGE": "1.7.0",
    "CURRENT_ELECTRICITY_DELIVERY": "2.7.0",
    "CURRENT_REACTIVE_IMPORTED": "3.7.0",
    "CURRENT_REACTIVE_EXPORTED": "4.7.0",
    "ELECTRICITY_ACTIVE_TARIFF": "96.14.0",
    "EQUIPMENT_IDENTIFIER": "96.1.1",
    "LONG_POWER_FAILURE_COUNT": "96.7.9",
    "SHORT_POWER_FAILURE_COUNT": "96.7.21",
    "POWER_EVENT_FAILURE_LOG": "99.97.0",
    "VOLTAGE_SAG_L1_COUNT": "32.32.0",
    "VOLTAGE_SAG_L2_COUNT": "52.32.0",
    "VOLTAGE_SAG_L3_COUNT": "72.32.0",
    "VOLTAGE_SWELL_L1_COUNT": "32.36.0",
    "VOLTAGE_SWELL_L2_COUNT": "52.36.0",
    "VOLTAGE_SWELL_L3_COUNT": "72.36.0",
    "INSTANTANEOUS_VOLTAGE_L1": "32.7.0",
    "INSTANTANEOUS_VOLTAGE_L2": "52.7.0",
    "INSTANTANEOUS_VOLTAGE_L3": "72.7.0",
    "INSTANTANEOUS_CURRENT_L1": "31.7.0",
    "INSTANTANEOUS_CURRENT_L2": "51.7.0",
    "INSTANTANEOUS_CURRENT_L3": "71.7.0",
    "FUSE_THRESHOLD_L1": "31.4.0",
    "FUSE_THRESHOLD_L2": "51.4.0",
    "FUSE_THRESHOLD_L3": "71.4.0",
    "TEXT_MESSAGE_CODE": "96.13.1",
    "TEXT_MESSAGE": "96.13.0",
    "DEVICE_TYPE": "24.1.0",
    "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE": "21.7.0",
    "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE": "41.7.0",
    "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE": "61.7.0",
    "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE": "22.7.0",
    "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE": "42.7.0",
    "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE": "62.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_L1_POSITIVE": "23.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_L1_NEGATIVE": "24.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_L2_POSITIVE": "43.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_L2_NEGATIVE": "44.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_L3_POSITIVE": "63.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_L3_NEGATIVE": "64.7.0",
    "EQUIPMENT_IDENTIFIER_GAS": "96.1.0",
    "HOURLY_GAS_METER_READING": "24.2.1",
    "GAS_METER_READING": "24.3.0",
    "ACTUAL_TRESHOLD_ELECTRICITY": "17.0.0",
    "ACTUAL_SWITCH_POSITION": "96.3.10",
    "VALVE_POSITION_GAS": "24.4.0",
    "MBUS_DEVICE_TYPE": "24.1.0",
    "MBUS_VALVE_POSITION": "24.4.0",
    "BELGIUM_VERSION_INFORMATION": "96.1.4",
    "BELGIUM_EQUIPMENT_IDENTIFIER": "96.1.1",
    "BELGIUM_CURRENT_AVERAGE_DEMAND": "1.4.0",
    "BELGIUM_MAXIMUM_DEMAND_MONTH": "1.6.0",
    "BELGIUM_MAXIMUM_DEMAND_13_MONTHS": "98.1.0",
    "LUXEMBOURG_EQUIPMENT_IDENTIFIER": "42.0.0",
    "COSEM_LOGICAL_DEVICE_NAME": "42.0.0",
    "MSN_INSTANTANEOUS_APPARENT_POWER_POSITIVE": "9.7.0",
    "MSN_INSTANTANEOUS_APPARENT_POWER_NEGATIVE": "10.7.0",
    "MSN_CT_RATIO": "31.4.0",
    "MSN_MBUS_SWITCH_POSITION": "96.3.10",
    "MSN_TEXT_MESSAGE_2": "96.13.2",
    "MSN_TEXT_MESSAGE_3": "96.13.3",
    "MSN_TEXT_MESSAGE_4": "96.13.4",
    "MSN_TEXT_MESSAGE_5": "96.13.5",
    "Q3D_EQUIPMENT_IDENTIFIER": "0.0.0",
    "Q3D_EQUIPMENT_STATE": "96.5.5",
    "Q3D_EQUIPMENT_SERIALNUMBER": "96.1.255",
    "EQUIPMENT_SERIAL_NUMBER": "96.1.0",
    "ELECTRICITY_REACTIVE_TOTAL_Q1": "5.8.0",
    "ELECTRICITY_REACTIVE_TOTAL_Q2": "6.8.0",
    "ELECTRICITY_REACTIVE_TOTAL_Q3": "7.8.0",
    "ELECTRICITY_REACTIVE_TOTAL_Q4": "8.8.0",
    "ELECTRICITY_COMBINED": "15.8.0",
    "INSTANTANEOUS_POWER_FACTOR_TOTAL": "13.7.0",
    "INSTANTANEOUS_POWER_FACTOR_L1": "33.7.0",
    "INSTANTANEOUS_POWER_FACTOR_L2": "53.7.0",
    "INSTANTANEOUS_POWER_FACTOR_L3": "73.7.0",
    "FREQUENCY": "14.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_Q1": "5.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_Q2": "6.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_Q3": "7.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_Q4": "8.7.0",
}

READ_SIZE = 64

log = logging.getLogger("p1sim-adapter")


def text_of(value):
    """A parsed value in the schema: Decimal as text, datetime as RFC 3339, None as null."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        # Fixed point: str() writes a zero with seven decimals (EasyMeter's kWh) as "0E-7".
        return format(value, "f")
    return str(value)


def values_of(obj):
    """The value dicts dsmr_parser parsed for one object, in the schema's form. A power-failure
    log reports its entries (the count and capture id are header values the schema lets a decoder
    leave out); the Belgian peak history is a list of peaks, each with its two timestamps and value."""
    if isinstance(obj, list):
        dicts = [v for peak in obj for v in peak.values]
    elif isinstance(obj, ProfileGenericObject):
        dicts = [v for entry in obj.buffer for v in entry.values]
    else:
        dicts = obj.values
    return [{"value": text_of(v.get("value")), "unit": v.get("unit")} for v in dicts if isinstance(v, dict)]


def a_b(obj):
    """The A and B groups dsmr_parser read from the line: (1, 0) for 1-0:..., (0, 2) for 0-2:..."""
    probe = obj[0] if isinstance(obj, list) and obj else obj
    return getattr(probe, "obis_id_code", (0, 0))


class Session:
    """One connection of Home Assistant's DSMRProtocol to one meter."""

    def __init__(self, spec_name, key, out, auth_key=""):
        if spec_name not in SPECS:
            raise SystemExit("p1sim-adapter: unknown P1SIM_SPEC %r, expected one of %s" % (spec_name, ", ".join(SPECS)))
        plaintext = not key and spec_name in PLAINTEXT_SPECS
        self.spec_name = PLAINTEXT_SPECS[spec_name] if plaintext else SPECS[spec_name]
        self.spec = getattr(telegram_specifications, self.spec_name)
        self.parser = TelegramParser(self.spec)
        self.encrypted = bool(self.spec.get("general_global_cipher"))
        self.key = key
        # The meter's own authentication key; empty: parse() takes the one the specification carries.
        self.auth_key = auth_key
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
            parsed = self.parser.parse(telegram, encryption_key=self.key, authentication_key=self.auth_key)
        except DecryptionError:
            # The protocol closes the transport on a decryption error.
            raise
        except InvalidChecksumError as err:
            log.info("%s", err)
            return
        except ParseError as err:
            log.info("failed to parse telegram: %s", err)
            return
        self.out.write(json.dumps(self.report(parsed)) + "\n")

    def obis(self, name, obj, device=None):
        """The OBIS code of an object: its meaning from the name, A and B from obis_id_code."""
        a, b = a_b(obj)
        if name == "MBUS_METER_READING":
            belgian_gas = self.spec_name == "BELGIUM_FLUVIUS" and device_type(device) == 3
            cde = "24.2.3" if belgian_gas else "24.2.1"
        elif name == "MBUS_EQUIPMENT_IDENTIFIER":
            cde = "96.1.1" if self.spec_name == "BELGIUM_FLUVIUS" else "96.1.0"
        else:
            cde = MEANING.get(name)
        if cde is None:
            log.warning("no OBIS code known for dsmr_parser's %s: left out", name)
            return None
        return "%d-%d:%s" % (a, b, cde)

    def report(self, telegram):
        """Every object of the parsed Telegram, the M-Bus ones per device."""
        objects = []
        for name, obj in telegram:
            if name == "MBUS_DEVICES":
                for device in obj:
                    for dev_name, dev_obj in device:
                        code = self.obis(dev_name, dev_obj, device)
                        if code:
                            objects.append({"obis": code, "values": values_of(dev_obj)})
                continue
            code = self.obis(name, obj)
            if code:
                objects.append({"obis": code, "values": values_of(obj)})
        return {"objects": objects}


def device_type(device):
    """The device type dsmr_parser read for an M-Bus device, or None."""
    for name, obj in device if isinstance(device, MbusDevice) else []:
        if name in ("MBUS_DEVICE_TYPE", "DEVICE_TYPE"):
            try:
                return int(obj.value)
            except (TypeError, ValueError):
                return None
    return None


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

"""dsmr_parser's decode throughput on the telegrams p1sim's decode benchmark uses, for the
comparison in BENCHMARKS.md.

Usage: target/py/dsmr-parser-1.11.2/bin/python simulator/core/benches/dsmr_parser_speed.py FILE SPEC

FILE holds consecutive telegrams (from `p1sim emit`); SPEC is a dsmr_parser specification name
(V5, BELGIUM_FLUVIUS, ...). Each telegram is parsed with every object, as Home Assistant does, and
the best of five passes is reported.
"""

import sys
import time

from dsmr_parser import telegram_specifications
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.parsers import TelegramParser

path, spec_name = sys.argv[1], sys.argv[2]
data = open(path, "rb").read().decode("latin1")
buffer = TelegramBuffer()
buffer.append(data)
telegrams = list(buffer.get_all())
parser = TelegramParser(getattr(telegram_specifications, spec_name))
best = None
for _ in range(5):
    start = time.perf_counter()
    for t in telegrams:
        parser.parse(t)
    elapsed = time.perf_counter() - start
    best = elapsed if best is None else min(best, elapsed)
size = sum(len(t) for t in telegrams)
print("dsmr_parser %s: %d telegrams, %d bytes, %.3f s, %.2f MB/s, %.0f telegrams/s"
      % (spec_name, len(telegrams), size, best, size / best / 1e6, len(telegrams) / best))

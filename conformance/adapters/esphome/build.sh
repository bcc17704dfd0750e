#!/bin/sh
# Builds the conformance adapter around ESPHome's DSMR parser (esphome-libs/dsmr_parser, header-only
# C++20) from a source checkout. The library is on no package registry, so the checkout is yours:
#
#   git clone https://github.com/esphome-libs/dsmr_parser
#   conformance/adapters/esphome/build.sh --source dsmr_parser
#   p1sim conformance --dut target/p1sim-adapter-esphome
#
# or in one step: p1sim conformance --dut esphome --source dsmr_parser
set -eu

usage="usage: $0 [--source DIR] [--output FILE]

  --source DIR   a checkout of https://github.com/esphome-libs/dsmr_parser (its root or its src/)
                 [default: \$ESPHOME_DSMR_SOURCE]
  --output FILE  the adapter binary to write [default: target/p1sim-adapter-esphome]

Compiles adapter.cpp with \${CXX:-g++} -std=c++20; does nothing when FILE is newer than the adapter
and every header of DIR. Prints FILE."

here=$(cd "$(dirname "$0")" && pwd)
source=${ESPHOME_DSMR_SOURCE:-}
output=$here/../../../target/p1sim-adapter-esphome

fail() {
    echo "$0: $1" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --source) [ $# -ge 2 ] || fail "--source needs a directory"; source=$2; shift 2 ;;
        --source=*) source=${1#--source=}; shift ;;
        --output) [ $# -ge 2 ] || fail "--output needs a file"; output=$2; shift 2 ;;
        --output=*) output=${1#--output=}; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) fail "unknown argument '$1'
$usage" ;;
    esac
done

get_it="get it with \`git clone https://github.com/esphome-libs/dsmr_parser\` (docs/compatibility.md names the commit its column was recorded at)"
[ -n "$source" ] || fail "no source checkout of esphome-libs/dsmr_parser: give --source DIR or set ESPHOME_DSMR_SOURCE; $get_it"
[ -d "$source" ] || fail "--source $source is not a directory; $get_it"
if [ -f "$source/src/dsmr_parser/parser.h" ]; then
    include=$(cd "$source/src" && pwd)
elif [ -f "$source/dsmr_parser/parser.h" ]; then
    include=$(cd "$source" && pwd)
else
    fail "$source holds no src/dsmr_parser/parser.h: it is not a checkout of esphome-libs/dsmr_parser; $get_it"
fi

# Up to date when built from the same headers and nothing changed since.
stamp=$output.source
if [ -x "$output" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$include" ] &&
    [ -z "$(find "$include/dsmr_parser" "$here/adapter.cpp" "$here/build.sh" -newer "$output" | head -n 1)" ]; then
    echo "$output"
    exit 0
fi

mkdir -p "$(dirname "$output")"
partial=$output.partial.$$
trap 'rm -f "$partial"' EXIT
${CXX:-g++} -std=c++20 -O2 -Wall -I "$include" -o "$partial" "$here/adapter.cpp" ||
    fail "compiling the adapter against $include failed (it needs a C++20 compiler such as g++ 12; set CXX to choose one)"
mv "$partial" "$output"
echo "$include" >"$stamp"
echo "$output"

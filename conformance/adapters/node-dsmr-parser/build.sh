#!/bin/sh
# Prepares a source checkout of @athombv/dsmr-parser (node-dsmr-parser, the parser of the Homey
# Energy Dongle) for the conformance adapter: the package is not on the npm registry, so it is
# built from the checkout with its own locked toolchain (`npm ci`, then its `build` script, tsc)
# when its dist/ is missing.
#
#   git clone https://github.com/athombv/node-dsmr-parser
#   conformance/adapters/node-dsmr-parser/build.sh --source node-dsmr-parser
#   NODE_DSMR_PARSER=node-dsmr-parser p1sim conformance --dut 'node conformance/adapters/node-dsmr-parser/adapter.mjs'
#
# or in one step: p1sim conformance --dut node-dsmr-parser --source node-dsmr-parser
set -eu

usage="usage: $0 [--source DIR]

  --source DIR   a checkout of https://github.com/athombv/node-dsmr-parser [default: \$NODE_DSMR_PARSER]

Runs \`npm ci\` and \`npm run build\` in DIR unless DIR/dist/index.js exists. Prints DIR."

source=${NODE_DSMR_PARSER:-}

fail() {
    echo "$0: $1" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --source) [ $# -ge 2 ] || fail "--source needs a directory"; source=$2; shift 2 ;;
        --source=*) source=${1#--source=}; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) fail "unknown argument '$1'
$usage" ;;
    esac
done

get_it="get it with \`git clone https://github.com/athombv/node-dsmr-parser\` (docs/compatibility.md names the commit its column was recorded at)"
[ -n "$source" ] || fail "no source checkout of @athombv/dsmr-parser: give --source DIR or set NODE_DSMR_PARSER; $get_it"
[ -d "$source" ] || fail "--source $source is not a directory; $get_it"
grep -q '"name": *"@athombv/dsmr-parser"' "$source/package.json" 2>/dev/null ||
    fail "$source/package.json does not name @athombv/dsmr-parser: it is not a checkout of athombv/node-dsmr-parser; $get_it"
source=$(cd "$source" && pwd)

if [ ! -f "$source/dist/index.js" ]; then
    command -v npm >/dev/null || fail "building $source needs npm (Node 20 or later)"
    echo "building $source: npm ci && npm run build" >&2
    (cd "$source" && npm ci --no-audit --no-fund >&2 && npm run build >&2) ||
        fail "building $source failed: see npm's output above"
    [ -f "$source/dist/index.js" ] || fail "npm run build in $source wrote no dist/index.js"
fi
echo "$source"

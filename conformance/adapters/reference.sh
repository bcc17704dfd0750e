#!/usr/bin/env bash
# p1sim conformance adapter: p1sim's reference decoder (`p1sim decode --json --valid-only`) as an
# external command. It passes every case, so it is the template to copy for a decoder you can
# call from a shell:
#
#   p1sim conformance --dut conformance/adapters/reference.sh --transport pty
#
# The interface (README.md in this directory): the case arrives in environment variables
# (P1SIM_SPEC, P1SIM_KEY, P1SIM_TRANSPORT, ...) and its bytes on stdin, on the PTY P1SIM_PTY or
# over TCP from P1SIM_TCP; the adapter prints one JSON line per telegram it accepts and exits 0.
# P1SIM is the p1sim binary running the suite (else `p1sim` from PATH).
set -euo pipefail

p1sim=${P1SIM:-p1sim}

# Decodes standard input. `p1sim decode` exits 1 when it met an invalid telegram: that is what
# the suite checks, not a failure of the adapter, so only worse (2: usage or IO) is passed on.
decode() {
    local status=0 keys=()
    [ -n "${P1SIM_KEY:-}" ] && keys+=(--key "$P1SIM_KEY")
    [ -n "${P1SIM_AUTH_KEY:-}" ] && keys+=(--auth-key "$P1SIM_AUTH_KEY")
    "$p1sim" decode --json --valid-only "${keys[@]}" - || status=$?
    [ "$status" -le 1 ] || exit "$status"
}

case "${P1SIM_TRANSPORT:-stdin}" in
stdin)
    if [ "${P1SIM_PERSISTENT:-}" = 1 ]; then
        # One process for many cases: a header line, exactly SIZE bytes, then the answer.
        while IFS=$'\t' read -r tag name size _spec _baud _framing key auth; do
            if [ "$tag" != P1SIM-CASE ]; then
                echo "reference.sh: expected a P1SIM-CASE header, got ${tag:0:80}" >&2
                exit 2
            fi
            [ "$key" = - ] && key=
            [ "$auth" = - ] && auth=
            head -c "$size" | P1SIM_KEY=$key P1SIM_AUTH_KEY=$auth decode
            printf 'P1SIM-END\t%s\n' "$name"
        done
    else
        decode
    fi
    ;;
pty)
    # The runner set the PTY raw; cat reads it until the runner hangs up (EOF or EIO).
    { cat "$P1SIM_PTY" 2>/dev/null || true; } | decode
    ;;
tcp)
    # bash's /dev/tcp: connect, read until the runner shuts its side down.
    exec 3<>"/dev/tcp/${P1SIM_TCP%:*}/${P1SIM_TCP##*:}"
    decode <&3
    ;;
*)
    echo "reference.sh: unknown P1SIM_TRANSPORT ${P1SIM_TRANSPORT}" >&2
    exit 2
    ;;
esac

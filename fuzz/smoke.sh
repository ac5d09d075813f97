#!/usr/bin/env bash
# Runs every fuzz target for a short smoke (default 30 s each) on the
# committed corpus. New inputs go to a scratch directory, so the committed
# corpus stays small; crashes land in fuzz/artifacts/<target>/.
#   fuzz/smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
# cargo-fuzz needs nightly flags: use the nightly toolchain when installed
# (unless RUSTC_BOOTSTRAP=1 is already set, which asks for the default
# toolchain), otherwise let stable accept them.
if [ "${RUSTC_BOOTSTRAP:-}" != 1 ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
# Build every target first: one cargo run compiles them in parallel, and the
# runs below then start at once.
started=$SECONDS
if [ $# -eq 0 ]; then
    "${fuzz[@]}" build
else
    for t in "${targets[@]}"; do "${fuzz[@]}" build "$t"; done
fi
echo "== built in $((SECONDS - started)) s"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "corpus/$t"
    echo "== $t (${secs}s)"
    if ! "${fuzz[@]}" run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
        2>"$scratch/$t.log"; then
        echo "!! $t failed; see fuzz/artifacts/$t"
        tail -30 "$scratch/$t.log"
        status=1
    else
        grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^Done" "$scratch/$t.log" || true
    fi
done
exit $status

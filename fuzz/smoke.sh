#!/usr/bin/env bash
# Runs every fuzz target for a short smoke (default 30 s each) on the
# committed corpus. New inputs go to a scratch directory, so the committed
# corpus stays small; crashes land in fuzz/artifacts/<target>/.
#   fuzz/smoke.sh [SECONDS] [TARGET...]
# FUZZ_JOBS=N runs N targets at once.
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
# FUZZ_JOBS targets run at once (default 1; `cargo xtask test` uses 2).
jobs_max="${FUZZ_JOBS:-1}"
run_one() {
    local t="$1"
    mkdir -p "$scratch/$t" "corpus/$t"
    local rc=0
    "${fuzz[@]}" run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
        >/dev/null 2>"$scratch/$t.log" || rc=$?
    echo "$rc" >"$scratch/$t.rc"
}
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n || true
    done
    echo "== $t (${secs}s)"
    run_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
    if [ "$(cat "$scratch/$t.rc")" != 0 ]; then
        echo "!! $t failed; see fuzz/artifacts/$t"
        tail -30 "$scratch/$t.log"
        status=1
    else
        echo "-- $t: $(grep -E '^stat::number_of_executed_units' "$scratch/$t.log" | awk '{print $2}') runs," \
            "peak RSS $(grep -E '^stat::peak_rss_mb' "$scratch/$t.log" | awk '{print $2}') MB"
    fi
done
exit $status

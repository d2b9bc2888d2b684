#!/bin/bash
# The GPU checks a change to kernels/cuda/ needs, in one command, from a bundle (tools/bundle.sh):
# for a lent machine whose time is short, or a vendor's box. Run it from a checkout of the
# bundle's commit (the tests read files from it). Steps, each under its own time limit:
#   device     the device as rotabench sees it (and nvidia-smi's line); no device: exit 2
#   tests      every GPU test: rbtest --filter 'cuda_*/*'
#   memcheck   compute-sanitizer memcheck over the same tests, API errors not reported (one
#              test provokes an out-of-memory error on purpose)
#   racecheck  compute-sanitizer racecheck over the suites of the kernels with shared memory
#   bench      rotabench bench --cuda over every CUDA benchmark, with its JSON
# usage: tools/gpu_check.sh BUNDLE.tar.xz OUTDIR [STEP ...]   (default: every step)
# Writes OUTDIR/STEP.txt for each step (bench also bench.json) and OUTDIR/summary.txt.
# The limits add up to about 35 minutes; where one call is limited (a lent machine's 10), name
# the steps over several calls: `device tests bench`, then `memcheck`, then `racecheck`.
# Exit: 0 every step passed, 1 one failed (summary.txt says which), 2 bad usage or no device.
# Its steps are the commands the 2026-11-24 GPU session ran by hand; the script itself was written
# in a session without a GPU and checked only on its no-device paths.
set -uo pipefail
bundle=${1:?usage: tools/gpu_check.sh BUNDLE.tar.xz OUTDIR [STEP ...]}
out=${2:?usage: tools/gpu_check.sh BUNDLE.tar.xz OUTDIR [STEP ...]}
shift 2
steps=("$@")
((${#steps[@]})) || steps=(device tests memcheck racecheck bench)
for s in "${steps[@]}"; do
    case $s in device | tests | memcheck | racecheck | bench) ;;
    *) echo "gpu_check: unknown step '$s' (device tests memcheck racecheck bench)" >&2; exit 2 ;;
    esac
done
[ -r "$bundle" ] || { echo "gpu_check: cannot read $bundle (make bundle first)" >&2; exit 2; }
mkdir -p "$out" || exit 2
b=$(mktemp -d)
trap 'rm -rf "$b"' EXIT
tar -C "$b" -xJf "$bundle" || { echo "gpu_check: $bundle is not a bundle" >&2; exit 2; }
E="$b/env.sh"
sanitizer=$(command -v compute-sanitizer)
for c in /usr/local/cuda*/bin/compute-sanitizer; do
    [ -z "$sanitizer" ] && [ -x "$c" ] && sanitizer=$c
done
failed=0

# step NAME LIMIT_S CMD...: runs CMD into OUTDIR/NAME.txt and records its exit status.
step() {
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    local what="rc $rc"
    ((rc == 124)) && what="timed out after ${limit}s"
    echo "$name: $( ((rc == 0)) && echo ok || echo FAILED) ($what, $((SECONDS - t0))s)" | tee -a "$out/summary.txt"
    ((rc == 0)) || failed=1
}

: > "$out/summary.txt"
for s in "${steps[@]}"; do
    case $s in
    device)
        step device 60 "$E" "$b/bin/rotabench" hw --no-limits
        command -v nvidia-smi > /dev/null && nvidia-smi -L >> "$out/device.txt" 2>&1
        if grep -q 'devices *\[\]' "$out/device.txt"; then
            echo "gpu_check: no CUDA device: $(grep reason "$out/device.txt")" | tee -a "$out/summary.txt" >&2
            exit 2
        fi ;;
    tests)
        step tests 480 "$E" "$b/bin/rbtest" --filter 'cuda_*/*' -j4
        grep Synthesis "$out/tests.txt" | tee -a "$out/summary.txt"
        if grep -q 'Tested: 0 ' "$out/tests.txt"; then # every test skipped: no device
            sed -i 's/^tests: ok/tests: FAILED (every test skipped: no device visible?)/' "$out/summary.txt"
            echo "tests: none ran (every GPU test skips without a visible device)"
            failed=1
        fi ;;
    memcheck | racecheck)
        if [ -z "$sanitizer" ]; then
            echo "$s: FAILED (compute-sanitizer not found)" | tee -a "$out/summary.txt"
            failed=1
            continue
        fi
        filter='cuda_*/*' args=(--report-api-errors no)
        [ "$s" = racecheck ] && filter='cuda_+(fwht|hadamard*|rht*|transforms|kv_int4|quant|codebook)/*' args=()
        step "$s" 580 "$E" "$sanitizer" --tool "$s" "${args[@]}" --error-exitcode 9 \
            "$b/bin/rbtest" --filter "$filter" -j1
        grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$s.txt" | sort | uniq -c | tee -a "$out/summary.txt" ;;
    bench)
        step bench 400 "$E" "$b/bin/rotabench" bench --cuda --repetitions 5 --min-time 0.05 \
            --json "$out/bench.json" ;;
    esac
done
exit $failed

#!/bin/bash
# Packs rotabench and rbtest (stripped) with the shared libraries they load, except glibc,
# libstdc++/libgcc and the CUDA toolkit's own, into one tar.xz: for running the benchmarks and
# the tests on a machine without the Debian build packages (a vendor's GPU box, a lent machine
# with no package mirror). The target needs x86-64, glibc >= the build machine's, and, for a
# CUDA build, the CUDA runtime and cuBLAS of the same major version (the binaries look in
# /usr/local/cuda/lib64 first).
#   usage: tools/bundle.sh BUILD_DIR OUT.tar.xz
#   there: mkdir b && tar -C b -xJf OUT.tar.xz && b/env.sh b/bin/rbtest --filter 'cuda_*/*'
# (run from a checkout of the same commit: the tests and configs read files from it).
set -euo pipefail
build=${1:?usage: tools/bundle.sh BUILD_DIR OUT.tar.xz}
out=${2:?usage: tools/bundle.sh BUILD_DIR OUT.tar.xz}
for b in rotabench rbtest; do
    [ -x "$build/$b" ] || { echo "bundle: $build/$b is missing (make BUILD=$build first)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/lib"
for b in rotabench rbtest; do strip -o "$tmp/bin/$b" "$build/$b"; done
ldd "$build/rotabench" "$build/rbtest" | awk '$3 ~ /^\// { print $3 }' | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so|/usr/local/cuda' |
    while read -r lib; do cp -L "$lib" "$tmp/lib/"; done
cat > "$tmp/env.sh" <<'SH'
#!/bin/sh
# Runs a command with the bundle's libraries first on the search path (and RB_TEST_BIN set).
d=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" RB_TEST_BIN="$d/bin/rotabench"
exec "$@"
SH
chmod +x "$tmp/env.sh"
tar -C "$tmp" -cf - bin lib env.sh | xz -T0 -6 > "$out"
echo "bundle: $out ($(du -h "$out" | cut -f1); $(ls "$tmp/lib" | wc -l) libraries)"

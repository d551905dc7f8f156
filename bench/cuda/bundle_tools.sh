#!/usr/bin/env bash
# bench/cuda/bundle_tools.sh DIR [BUILD]
# Copies dsflow-cuda-check with the shared libraries it needs beyond a base
# system (Protobuf, OpenBLAS, gfortran) into DIR, with a wrapper
# DIR/dsflow-cuda-check that finds them: for a GPU machine without a dsflow
# build (the device machines have CUDA but no Protobuf). About 45 MB.
set -euo pipefail
dir=${1:?usage: bundle_tools.sh DIR [BUILD]}
bin=${2:-build}/bin/dsflow-cuda-check
[ -x "$bin" ] || { echo "bundle_tools.sh: $bin not found (a build with the CUDA toolkit has it)" >&2; exit 1; }
mkdir -p "$dir/lib"
cp "$bin" "$dir/lib/dsflow-cuda-check"
# The libraries a base Debian/Ubuntu system may lack (libc, libstdc++, libz
# and the CUDA driver are the machine's own).
ldd "$bin" | awk '/=> \// {print $3}' |
  grep -E 'libprotobuf|libopenblas|libgfortran|libquadmath' |
  while read -r lib; do cp -L "$lib" "$dir/lib/"; done
cat > "$dir/dsflow-cuda-check" <<'WRAP'
#!/usr/bin/env bash
here=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/lib/dsflow-cuda-check" "$@"
WRAP
chmod +x "$dir/dsflow-cuda-check"
du -sh "$dir"

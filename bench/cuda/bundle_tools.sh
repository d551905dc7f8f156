#!/usr/bin/env bash
# bench/cuda/bundle_tools.sh DIR [BUILD]
# Packs dsflow-cuda-check and dsflow-run with the shared libraries they need
# beyond a base system (Protobuf, OpenBLAS, gfortran, OpenMPI) into
# DIR/lib.tar.xz, with wrappers DIR/dsflow-cuda-check and DIR/dsflow-run that
# unpack it once (into /tmp) and run from there: for a GPU machine without a
# dsflow build (the device machines have CUDA, with cuBLASLt, but no
# Protobuf). About 8 MB packed (48 MB unpacked, too much to carry as is).
set -euo pipefail
dir=${1:?usage: bundle_tools.sh DIR [BUILD]}
lib=$(mktemp -d)
trap 'rm -rf "$lib"' EXIT
mkdir -p "$dir"
for tool in dsflow-cuda-check dsflow-run; do
  bin=${2:-build}/bin/$tool
  [ -x "$bin" ] || { echo "bundle_tools.sh: $bin not found (a build with the CUDA toolkit has it)" >&2; exit 1; }
  cp "$bin" "$lib/$tool"
  # The libraries a base Debian/Ubuntu system may lack (libc, libstdc++,
  # libz, the CUDA driver and toolkit are the machine's own).
  ldd "$bin" | awk '/=> \// {print $3}' |
    grep -E 'libprotobuf|libopenblas|libgfortran|libquadmath|libmpi|libopen-|libhwloc|libevent|libpmix|libudev' |
    while read -r so; do cp -L "$so" "$lib/"; done
  cat > "$dir/$tool" <<WRAP
#!/usr/bin/env bash
here=\$(cd "\$(dirname "\$0")" && pwd)
lib=/tmp/dsflow-bundle-\$(cksum < "\$here/lib.tar.xz" | cut -d' ' -f1)
[ -x "\$lib/$tool" ] || { mkdir -p "\$lib" && tar -C "\$lib" -xJf "\$here/lib.tar.xz"; } || exit 1
LD_LIBRARY_PATH="\$lib:/usr/local/cuda/lib64\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$lib/$tool" "\$@"
WRAP
  chmod +x "$dir/$tool"
done
tar -C "$lib" -cJf "$dir/lib.tar.xz" .
du -sh "$dir"

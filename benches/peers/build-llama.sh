#!/usr/bin/env bash
# Builds llama-server and llama-batched-bench from the llama.cpp that PyPI's llama-cpp-python sdist
# vendors (the crate's copy has no tools), with the CPU setup of our own build. Cached under
# target/peers/: a second run with the same setup builds nothing.
#   PEERS_CPU=variants  GGML_BACKEND_DL + every x86 CPU variant, picked at run time (cpu-variants build)
#   PEERS_CPU=avx2      one built-in AVX2 backend: the flags llama-cpp-sys-2 sets for our default build
#   PEERS_OPENMP=OFF    ggml's own thread pool instead of OpenMP (build-<cpu>-threadpool), for
#                       `benches/peers/threads`
# Prints the directory that holds the binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cpu=${PEERS_CPU:-avx2}
version=0.3.36
dir=$root/target/peers
src=$dir/llama_cpp_python-$version/vendor/llama.cpp
openmp=${PEERS_OPENMP:-ON}
build=$dir/build-$cpu
[ "$openmp" = OFF ] && build=$build-threadpool
mkdir -p "$dir"

if [ ! -f "$src/CMakeLists.txt" ]; then
    pip download "llama-cpp-python==$version" --no-deps --no-binary :all: -d "$dir" -q >&2
    tar xzf "$dir/llama_cpp_python-$version.tar.gz" -C "$dir"
fi

# Never GGML_NATIVE or AMX at compile time: such binaries die with "Illegal instruction" here.
flags=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_OPENMP=$openmp -DLLAMA_CURL=OFF
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON)
case $cpu in
    variants) flags+=(-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DBUILD_SHARED_LIBS=ON) ;;
    # What llama-cpp-sys-2's build.rs turns on for our default x86-64 build (see its CMakeCache).
    avx2) flags+=(-DBUILD_SHARED_LIBS=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON
        -DGGML_F16C=ON -DGGML_SSE42=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF) ;;
    *) echo "PEERS_CPU must be avx2 or variants, not $cpu" >&2; exit 2 ;;
esac

stamp=$build/.built
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${flags[*]}" ]; then
    cmake -S "$src" -B "$build" "${flags[@]}" >&2
    targets=(llama-server llama-batched-bench llama-bench)
    # The variant modules are loaded at run time, so no binary depends on them: name them.
    if [ "$cpu" = variants ]; then
        mapfile -t -O 3 targets < <(cmake --build "$build" --target help | grep -o 'ggml-cpu-[a-z0-9_]*' | sort -u)
    fi
    cmake --build "$build" -j "${PEERS_JOBS:-2}" --target "${targets[@]}" >&2
    echo "${flags[*]}" >"$stamp"
fi
echo "$build/bin"

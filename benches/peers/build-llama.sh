#!/usr/bin/env bash
# Builds llama-server and llama-batched-bench from the llama.cpp that PyPI's llama-cpp-python sdist
# vendors (the crate's copy has no tools), with the CPU setup of our own build. Cached under
# target/peers/: a second run with the same setup builds nothing.
#   PEERS_CPU=variants  GGML_BACKEND_DL + every x86 CPU variant, picked at run time (cpu-variants build)
#   PEERS_CPU=avx2      one built-in AVX2 backend: the flags llama-cpp-sys-2 sets for our default build
#   PEERS_OPENMP=OFF    ggml's own thread pool instead of OpenMP (build-<cpu>-threadpool), for
#                       `benches/peers/threads`
#   PEERS_Q4_1_GEMM=ON  with our Q4_1 kernel (cmake/q4_1_gemm.c; build-<cpu>-q4_1gemm), to time the
#                       kernel alone in llama.cpp's own programs; the peers are llama.cpp as shipped
#   PEERS_TARGETS       the programs to build (default: llama-server llama-batched-bench llama-bench)
# Prints the directory that holds the binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cpu=${PEERS_CPU:-avx2}
version=0.3.36
dir=$root/target/peers
src=$dir/llama_cpp_python-$version/vendor/llama.cpp
openmp=${PEERS_OPENMP:-ON}
gemm=${PEERS_Q4_1_GEMM:-OFF}
build=$dir/build-$cpu
[ "$openmp" = OFF ] && build=$build-threadpool
[ "$gemm" = ON ] && build=$build-q4_1gemm
mkdir -p "$dir"

if [ ! -f "$src/CMakeLists.txt" ]; then
    pip download "llama-cpp-python==$version" --no-deps --no-binary :all: -d "$dir" -q >&2
    tar xzf "$dir/llama_cpp_python-$version.tar.gz" -C "$dir"
fi

# Never GGML_NATIVE or AMX at compile time: such binaries die with "Illegal instruction" here.
# Release (-O3) with cmake/llama-cpp.cmake, as our llama.cpp is built (.cargo/config.toml): without
# it GCC's `_tile_loadconfig` breaks the Sapphire Rapids module's AMX kernels at -O3. Our Q4_1
# kernel, which the same file adds, stays out unless PEERS_Q4_1_GEMM=ON.
flags=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_PROJECT_INCLUDE=$root/cmake/llama-cpp.cmake -DMODELSERVICE_Q4_1_GEMM=$gemm -DGGML_NATIVE=OFF -DGGML_OPENMP=$openmp -DLLAMA_CURL=OFF
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON)
case $cpu in
    variants) flags+=(-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DBUILD_SHARED_LIBS=ON) ;;
    # What llama-cpp-sys-2's build.rs turns on for our default x86-64 build (see its CMakeCache).
    avx2) flags+=(-DBUILD_SHARED_LIBS=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON
        -DGGML_F16C=ON -DGGML_SSE42=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF) ;;
    *) echo "PEERS_CPU must be avx2 or variants, not $cpu" >&2; exit 2 ;;
esac

read -r -a targets <<<"${PEERS_TARGETS:-llama-server llama-batched-bench llama-bench}"
stamp=$build/.built
# What was built, with which flags: a run that wants more builds again.
if [ ! -f "$stamp" ] || ! grep -qxF -e "${flags[*]} ${targets[*]}" "$stamp"; then
    cmake -S "$src" -B "$build" "${flags[@]}" >&2
    # With GGML_BACKEND_DL, ggml depends on every CPU variant module (ggml/src/CMakeLists.txt), so
    # building the programs builds the modules too.
    cmake --build "$build" -j "${PEERS_JOBS:-2}" --target "${targets[@]}" >&2
    echo "${flags[*]} ${targets[*]}" >>"$stamp"
fi

# A CPU module that dies on this processor ("Illegal instruction"; without the fix above, the
# Sapphire Rapids one did, at tilezero in its AMX q4_1 kernel) is set aside in held/, so llama.cpp
# picks the next best, which is reported.
if [ "$cpu" = variants ] && [[ " ${targets[*]} " == *" llama-bench "* ]]; then
    model=$("$root/scripts/fetch-models" smollm2 | cut -f2)
    while :; do
        rc=0
        # A prompt too: the AMX kernels run on batches of more than one token only.
        out=$("$build/bin/llama-bench" -m "$model" -t 1 -p 16 -n 2 -r 1 2>&1) || rc=$?
        module=$(grep -o 'loaded CPU backend from [^ ]*' <<<"$out" | tail -1 | cut -d' ' -f5)
        [ "$rc" -eq 0 ] && { echo "peers: llama.cpp picks ${module##*/}" >&2; break; }
        [ -n "$module" ] && [ "$rc" -eq 132 ] || { echo "$out" >&2; exit 1; }
        mkdir -p "$build/held" && mv "$module" "$build/held/"
        echo "peers: ${module##*/} dies with Illegal instruction here; set aside in $build/held/" >&2
    done
fi
echo "$build/bin"

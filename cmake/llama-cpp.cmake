# Included into llama.cpp's CMake project (CMAKE_PROJECT_INCLUDE, set in .cargo/config.toml and by
# benches/peers/build-llama.sh), so that llama.cpp can be built at -O3 with GCC, and to add our
# Q4_1 kernel to its CPU backends.
include_guard(GLOBAL)
if(CMAKE_VERSION VERSION_LESS 3.19)
    message(WARNING "CMake ${CMAKE_VERSION} cannot defer calls: GCC builds of llama.cpp's AMX "
        "kernels keep GCC's _tile_loadconfig, which breaks them at -O3 (build at -O2 instead)")
    return()
endif()

# GCC's `_tile_loadconfig` under-declares what `ldtilecfg` reads, and at -O3 the AMX kernels then
# load an empty tile configuration and die on their first prompt (see amx_tile_loadconfig.h).
# The CPU backends are defined in ggml/src, so the source property is set there, once that
# directory exists: at the end of the top-level directory.
function(modelservice_fix_amx_tile_loadconfig)
    # ggml-base is defined in ggml/src: without it (a system ggml) there is nothing to fix here.
    if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR NOT TARGET ggml-base)
        return()
    endif()
    set(ggml_src "${CMAKE_SOURCE_DIR}/ggml/src")
    set_source_files_properties("${ggml_src}/ggml-cpu/amx/mmq.cpp"
        DIRECTORY "${ggml_src}"
        PROPERTIES COMPILE_OPTIONS "-include;${CMAKE_CURRENT_FUNCTION_LIST_DIR}/amx_tile_loadconfig.h")
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL modelservice_fix_amx_tile_loadconfig)

# A tiled Q4_1 x Q8_1 matrix product (q4_1_gemm.c) in every CPU backend: ggml-cpu.c's calls of
# `llamafile_sgemm` go to `modelservice_sgemm`, which takes batches of Q4_1 weights and hands
# everything else to `llamafile_sgemm`. Bit for bit the stock kernel's results. Off for the
# peers' llama-server (benches/peers/build-llama.sh), which must stay llama.cpp as shipped.
option(MODELSERVICE_Q4_1_GEMM "Build llama.cpp's CPU backends with modelservice's Q4_1 kernel" ON)
function(modelservice_add_q4_1_gemm)
    if(NOT MODELSERVICE_Q4_1_GEMM OR NOT TARGET ggml-base OR NOT GGML_LLAMAFILE)
        return()
    endif()
    set(ggml_src "${CMAKE_SOURCE_DIR}/ggml/src")
    get_property(targets DIRECTORY "${ggml_src}" PROPERTY BUILDSYSTEM_TARGETS)
    set(added OFF)
    foreach(target IN LISTS targets)
        # `ggml-cpu` (one backend) or `ggml-cpu-<variant>`, not the variants' `-feats` probes.
        if(target MATCHES "^ggml-cpu(-[A-Za-z0-9_]+)?$" AND NOT target MATCHES "-feats$")
            target_sources(${target} PRIVATE "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/q4_1_gemm.c")
            set(added ON)
        endif()
    endforeach()
    if(added)
        set_property(SOURCE "${ggml_src}/ggml-cpu/ggml-cpu.c" DIRECTORY "${ggml_src}"
            APPEND PROPERTY COMPILE_DEFINITIONS "llamafile_sgemm=modelservice_sgemm")
        message(STATUS "modelservice: Q4_1 kernel added to the CPU backends")
    else()
        message(WARNING "modelservice: no llama.cpp CPU backend target found for the Q4_1 kernel")
    endif()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL modelservice_add_q4_1_gemm)

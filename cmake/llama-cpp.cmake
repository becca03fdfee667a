# Included into llama.cpp's CMake project (CMAKE_PROJECT_INCLUDE, set in .cargo/config.toml and by
# benches/peers/build-llama.sh), so that llama.cpp can be built at -O3 with GCC.
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

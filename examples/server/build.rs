fn main() {
    // The server binary is made in target/<profile>: llama.cpp's libraries go beside it, so it runs
    // from there (or from wherever it is copied with them) without LD_LIBRARY_PATH.
    modelservice_build_support::bundle_llama_libs(&modelservice_build_support::profile_dir())
        .expect("copy llama.cpp's shared libraries next to the server");
}

fn main() {
    // libmodelservice.so is made in target/<profile>: llama.cpp's libraries go beside it.
    modelservice_build_support::bundle_llama_libs(&modelservice_build_support::profile_dir())
        .expect("copy llama.cpp's shared libraries next to libmodelservice");
}

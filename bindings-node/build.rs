use std::path::Path;

fn main() {
    napi_build::setup();
    // The addon (modelservice.<platform>.node) is made in this directory: llama.cpp's libraries go beside it.
    modelservice_build_support::bundle_llama_libs(Path::new(env!("CARGO_MANIFEST_DIR")))
        .expect("copy llama.cpp's shared libraries next to the addon");
}

use std::path::Path;

fn main() {
    // maturin packs python/modelservice (where `_native` lands) into the wheel: llama.cpp's libraries go there.
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/modelservice");
    modelservice_build_support::bundle_llama_libs(&package)
        .expect("copy llama.cpp's shared libraries into the Python package");
}

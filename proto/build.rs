//! Compiles `schemas/*.proto` with the protoc binary that the `protoc-bin-vendored`
//! crate carries, so no system protoc is needed.

fn main() {
    let schemas = [
        "schemas/rankfile/bundle.proto",
        "schemas/rankfile/envelope.proto",
        "schemas/rankfile/content.proto",
        "schemas/rankfile/relay.proto",
        "schemas/rankfile/committee.proto",
        "schemas/rankfile/alert.proto",
    ];
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => std::path::PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path().expect("protoc-bin-vendored has a protoc"),
    };
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config
        .compile_protos(&schemas, &["schemas"])
        .expect("the schemas in proto/schemas are valid");
    // The directory too, so a schema added to it reruns the build script.
    println!("cargo:rerun-if-changed=schemas");
    for s in schemas {
        println!("cargo:rerun-if-changed={s}");
    }
}

//! uniffi's binding generator, built from the same uniffi version as
//! `rankfile-ffi` so the generated code matches the library's scaffolding.
//! Run in library mode: `uniffi-bindgen generate --library <cdylib> …`
//! (`cargo xtask bindings` does it for Kotlin, Swift and Python).

fn main() {
    uniffi::uniffi_bindgen_main()
}

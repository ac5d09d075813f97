//! Declares the `fuzzing` cfg that cargo-fuzz sets, so the fuzz hooks in
//! `src/fuzz.rs` compile cleanly under check-cfg.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
}

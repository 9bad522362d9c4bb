//! Declares the `fuzzing` cfg that `cargo afl build` sets, so the compiler's check of
//! configuration names knows it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
}

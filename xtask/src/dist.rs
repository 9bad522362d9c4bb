//! `cargo xtask dist`: what `cf push` uploads, laid out as `manifest.yml` expects it.
//!
//! Cloud Foundry's binary buildpack runs the app's command on its stack (cflinuxfs4) with none of
//! the build machine's libraries, so the relay is built as a static musl binary; the widget and
//! the admin page are trunk's release builds. All go into `dist/`: `dist/cti-relay`,
//! `dist/widget/` and `dist/admin/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup::{self, MUSL_TARGET, cargo, run, step, workspace_root};

/// Builds `dist/` and returns its path.
pub(crate) fn dist(args: &[String]) -> Result<PathBuf> {
    if let Some(arg) = args.first() {
        bail!("dist takes no arguments ({arg:?}); run `cargo xtask help`");
    }
    setup::widget_toolchain()?;
    let root = workspace_root();
    let out = root.join("dist");
    let built = build_static_relay()?;

    step("building the widget (trunk build --release)");
    let widget = out.join("widget");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if widget.exists() {
        std::fs::remove_dir_all(&widget)
            .with_context(|| format!("removing the old {}", widget.display()))?;
    }
    let widget_dir = widget.to_string_lossy();
    run(setup::trunk_build(setup::RELEASE_WASM).args(["--dist", &widget_dir]))?;

    step("building the admin page (trunk build --release)");
    let admin = out.join("admin");
    if admin.exists() {
        std::fs::remove_dir_all(&admin)
            .with_context(|| format!("removing the old {}", admin.display()))?;
    }
    let admin_dir = admin.to_string_lossy();
    run(&mut setup::trunk_build_admin(
        &admin_dir,
        setup::RELEASE_WASM,
    ))?;

    let binary = out.join("cti-relay");
    // Replaced, not overwritten in place: a relay started from dist/ may still be running it.
    let _ = std::fs::remove_file(&binary);
    std::fs::copy(&built, &binary)
        .with_context(|| format!("copying the relay to {}", binary.display()))?;

    step(&format!(
        "dist/ is ready for `cf push` (the relay static): {}",
        Sizes::of(&binary, &widget)?
    ));
    Ok(out)
}

/// The relay as `cf push` uploads it: a static release binary for musl; its path.
pub(crate) fn build_static_relay() -> Result<PathBuf> {
    setup::musl_toolchain()?;
    step(&format!(
        "building the relay: static release binary for {MUSL_TARGET}"
    ));
    // ring compiles C: musl-gcc (Debian's musl-tools) is the C compiler that targets musl.
    run(cargo(&[
        "build",
        "--release",
        "-p",
        "cti-relay",
        "--bin",
        "cti-relay",
        "--target",
        MUSL_TARGET,
    ])
    .env("CC_x86_64_unknown_linux_musl", "musl-gcc"))?;
    let built = setup::target_dir().join(format!("{MUSL_TARGET}/release/cti-relay"));
    if !is_static(&built)? {
        bail!(
            "{} asks for a dynamic loader: it would not start on Cloud Foundry's stack",
            built.display()
        );
    }
    Ok(built)
}

/// What a deployment ships, in bytes: `dist` prints it, `cargo xtask bench` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub(crate) relay: u64,
    pub(crate) wasm: u64,
    pub(crate) wasm_gzipped: u64,
}

impl Sizes {
    /// The relay binary at `relay` and the wasm of the widget build in `widget`.
    pub(crate) fn of(relay: &Path, widget: &Path) -> Result<Sizes> {
        let wasm = wasm_file(widget)?;
        Ok(Sizes {
            relay: len(relay)?,
            wasm: len(&wasm)?,
            wasm_gzipped: gzipped_len(&wasm)?,
        })
    }
}

impl std::fmt::Display for Sizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cti-relay {}, widget wasm {} ({} gzipped)",
            size(self.relay),
            size(self.wasm),
            size(self.wasm_gzipped)
        )
    }
}

fn len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len())
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// The size a browser downloads: gzip's default level, as most servers and CDNs serve it.
fn gzipped_len(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .args(["-c", "-6"])
        .arg(path)
        .output()
        .context("running gzip")?;
    if !out.status.success() {
        bail!("gzip failed on {}", path.display());
    }
    Ok(out.stdout.len() as u64)
}

/// trunk's release build names the wasm with a content hash.
fn wasm_file(widget: &Path) -> Result<PathBuf> {
    std::fs::read_dir(widget)
        .with_context(|| format!("reading {}", widget.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|e| e == "wasm"))
        .with_context(|| format!("trunk wrote no .wasm into {}", widget.display()))
}

/// Whether an ELF executable runs without a dynamic loader: no `PT_INTERP` program header.
fn is_static(path: &Path) -> Result<bool> {
    let elf = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8).map(|b| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(b);
            u64::from_le_bytes(bytes)
        })
    };
    // 64-bit little-endian ELF only: that is what the musl target builds.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        bail!("{} is not a 64-bit little-endian ELF file", path.display());
    }
    const PT_INTERP: u32 = 3;
    let (Some(phoff), Some(entry_size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("{} has a truncated ELF header", path.display());
    };
    for i in 0..usize::from(count) {
        let at = usize::try_from(phoff)? + i * usize::from(entry_size);
        match u32_at(at) {
            Some(PT_INTERP) => return Ok(false),
            Some(_) => {}
            None => bail!("{} has a truncated program header table", path.display()),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_executable_is_told_apart() {
        // The test binary itself is linked against the build machine's C library.
        let exe = std::env::current_exe().expect("test executable");
        assert!(!is_static(&exe).expect("an ELF file"));
        let not_elf = std::env::temp_dir().join(format!("xtask-not-elf-{}", std::process::id()));
        std::fs::write(&not_elf, b"#!/bin/sh\n").expect("write");
        assert!(is_static(&not_elf).is_err());
        let _ = std::fs::remove_file(&not_elf);
    }
}

//! Records the git revision latchkey was built from, for `/api/v4/version`.
use std::process::Command;

fn main() {
    let revision = std::env::var("LATCHKEY_REVISION").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=11", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    });
    println!(
        "cargo:rustc-env=LATCHKEY_REVISION={}",
        revision.unwrap_or_else(|| "unknown".to_owned())
    );
    println!("cargo:rerun-if-env-changed=LATCHKEY_REVISION");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
}

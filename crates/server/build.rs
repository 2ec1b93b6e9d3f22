//! Records the git revision latchkey was built from, for `/api/v4/version`.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LATCHKEY_REVISION");
    let git = Path::new("../../.git");
    // Rebuild when the checked-out commit changes: HEAD names a branch, the
    // branch's ref file (or packed-refs) names the commit.
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../../.git/{r}");
        }
    }
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
}

//! Records the rhai version from Cargo.lock, so every ledger entry can name the engine that
//! evaluated it.

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    // Migrations are embedded at compile time: a new one must rebuild the binary.
    println!("cargo:rerun-if-changed=migrations");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"rhai\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                version = v.trim_matches('"').to_string();
            }
            break;
        }
    }
    println!("cargo:rustc-env=ELIGO_RHAI_VERSION={version}");
}

//! Rebuilds the binary when a template or demo app file is added or removed: `include_dir!`
//! alone only notices edits to files it already embedded.

fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=demo");
}

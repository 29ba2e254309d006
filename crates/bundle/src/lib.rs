//! The app bundle: the files of one revision, their paths checked, packed as a tar archive.
//!
//! Both sides use this crate: the CLI packs a folder into a [`Bundle`] and the server unpacks
//! the upload again with [`Bundle::from_tar`], never trusting what the client checked.
//! Pure: archives are read from and written to memory.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest, Sha256};

/// The name of the manifest inside every bundle.
pub const MANIFEST_FILE: &str = "terrarium.yaml";

/// Caps on what one bundle may hold. Spelled out by the caller; there is no `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleLimits {
    pub max_total_bytes: u64,
    pub max_files: usize,
}

/// The caps the CLI applies before uploading, and the server's unless `[limits]` says otherwise.
pub const DEFAULT_LIMITS: BundleLimits = BundleLimits { max_total_bytes: 25 * 1024 * 1024, max_files: 2000 };

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("{path:?} is an absolute path; bundles may only hold paths relative to the app folder")]
    AbsolutePath { path: String },
    #[error("{path:?} leaves the app folder (..); keep every file inside the app folder")]
    PathTraversal { path: String },
    #[error("{path:?} is not a valid file path: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{path:?} is a symbolic link; copy the file into the app folder instead of linking to it")]
    Symlink { path: String },
    #[error("{path:?} is a {kind}; bundles may only hold regular files")]
    NotAFile { path: String, kind: &'static str },
    #[error("{path:?} appears twice in the bundle")]
    Duplicate { path: String },
    #[error("the bundle has more than {max_files} files; remove files the app does not need")]
    TooManyFiles { max_files: usize },
    #[error("the bundle is larger than {max_bytes} bytes; remove large files the app does not need")]
    TooLarge { max_bytes: u64 },
    #[error("the bundle has no {MANIFEST_FILE} at its root")]
    MissingManifest,
    #[error("the upload is not a readable tar archive: {reason}")]
    Corrupt { reason: String },
}

/// The files of one revision by normalised relative path, in sorted order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
    total_bytes: u64,
}

impl Bundle {
    pub fn new() -> Bundle {
        Bundle::default()
    }

    /// Adds one file, checking its path and the limits.
    pub fn insert(&mut self, path: &str, contents: Vec<u8>, limits: &BundleLimits) -> Result<(), BundleError> {
        let path = normalize_path(path)?;
        if self.files.contains_key(&path) {
            return Err(BundleError::Duplicate { path });
        }
        if self.files.len() >= limits.max_files {
            return Err(BundleError::TooManyFiles { max_files: limits.max_files });
        }
        let total_bytes = self.total_bytes + contents.len() as u64;
        if total_bytes > limits.max_total_bytes {
            return Err(BundleError::TooLarge { max_bytes: limits.max_total_bytes });
        }
        self.total_bytes = total_bytes;
        self.files.insert(path, contents);
        Ok(())
    }

    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub fn manifest(&self) -> Result<&[u8], BundleError> {
        self.get(MANIFEST_FILE).ok_or(BundleError::MissingManifest)
    }

    /// `sha256:<hex>` over the sorted (path, file digest) pairs: the same files give the same
    /// digest whatever the archive's timestamps, owners or order.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, contents) in &self.files {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(file_digest(contents).as_bytes());
            hasher.update([b'\n']);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    /// Packs the files as a tar archive with fixed metadata, so the bytes depend only on the files.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in &self.files {
            let mut header = tar::Header::new_ustar();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            // Writing into a Vec cannot fail, and every path was normalised on insert.
            builder.append_data(&mut header, path, contents.as_slice()).expect("writing a tar entry into memory");
        }
        builder.into_inner().expect("finishing a tar archive in memory")
    }

    /// Unpacks an uploaded archive, refusing anything that is not a plain file at a safe path.
    pub fn from_tar(archive: &[u8], limits: &BundleLimits) -> Result<Bundle, BundleError> {
        if archive.len() as u64 > limits.max_total_bytes.saturating_mul(2).saturating_add(1 << 20) {
            return Err(BundleError::TooLarge { max_bytes: limits.max_total_bytes });
        }
        let corrupt = |error: std::io::Error| BundleError::Corrupt { reason: error.to_string() };
        let mut bundle = Bundle::new();
        let mut reader = tar::Archive::new(archive);
        for entry in reader.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => None,
                tar::EntryType::Directory => continue,
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    return Err(BundleError::Symlink { path: raw_path });
                }
                tar::EntryType::Char | tar::EntryType::Block => Some("device"),
                tar::EntryType::Fifo => Some("named pipe"),
                // Extended headers are consumed by the tar crate; anything left is unknown.
                _ => Some("special entry"),
            };
            if let Some(kind) = kind {
                return Err(BundleError::NotAFile { path: raw_path, kind });
            }
            let size = entry.header().size().map_err(corrupt)?;
            if bundle.total_bytes + size > limits.max_total_bytes {
                return Err(BundleError::TooLarge { max_bytes: limits.max_total_bytes });
            }
            let mut contents = Vec::with_capacity(size as usize);
            entry.by_ref().take(size).read_to_end(&mut contents).map_err(corrupt)?;
            bundle.insert(&raw_path, contents, limits)?;
        }
        Ok(bundle)
    }
}

/// `sha256:<hex>` of one file's bytes: its blob address and its HTTP `ETag`.
pub fn file_digest(contents: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(contents)))
}

/// Checks a relative path and returns it in canonical form (`./a//b` → `a/b`).
pub fn normalize_path(path: &str) -> Result<String, BundleError> {
    let invalid = |reason| BundleError::InvalidPath { path: path.to_owned(), reason };
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":") {
        return Err(BundleError::AbsolutePath { path: path.to_owned() });
    }
    if path.contains('\\') {
        return Err(invalid("use / between folders, not \\"));
    }
    if path.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(BundleError::PathTraversal { path: path.to_owned() }),
            _ => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(invalid("it is empty"));
    }
    let normalized = segments.join("/");
    if normalized.len() > 1024 {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BundleLimits = BundleLimits { max_total_bytes: 1000, max_files: 3 };

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalize_path("./public//index.html").unwrap(), "public/index.html");
        assert!(matches!(normalize_path("/etc/passwd"), Err(BundleError::AbsolutePath { .. })));
        assert!(matches!(normalize_path("C:/x"), Err(BundleError::AbsolutePath { .. })));
        assert!(matches!(normalize_path("a/../../b"), Err(BundleError::PathTraversal { .. })));
        assert!(matches!(normalize_path("a\\b"), Err(BundleError::InvalidPath { .. })));
        assert!(matches!(normalize_path("./"), Err(BundleError::InvalidPath { .. })));
    }

    #[test]
    fn round_trip_and_digest_ignores_metadata() {
        let mut bundle = Bundle::new();
        bundle.insert("terrarium.yaml", b"a".to_vec(), &LIMITS).unwrap();
        bundle.insert("public/index.html", b"<h1>".to_vec(), &LIMITS).unwrap();
        let unpacked = Bundle::from_tar(&bundle.to_tar(), &LIMITS).unwrap();
        assert_eq!(unpacked, bundle);
        assert_eq!(unpacked.digest(), bundle.digest());
        assert!(bundle.digest().starts_with("sha256:"));
        let mut other = bundle.clone();
        other.files.insert("x".into(), vec![]);
        assert_ne!(other.digest(), bundle.digest());
    }

    #[test]
    fn limits_are_enforced() {
        let mut bundle = Bundle::new();
        for name in ["a", "b", "c"] {
            bundle.insert(name, vec![], &LIMITS).unwrap();
        }
        assert_eq!(bundle.insert("d", vec![], &LIMITS), Err(BundleError::TooManyFiles { max_files: 3 }));
        let mut bundle = Bundle::new();
        assert_eq!(bundle.insert("a", vec![0; 1001], &LIMITS), Err(BundleError::TooLarge { max_bytes: 1000 }));
        assert_eq!(bundle.insert("a", vec![], &LIMITS), Ok(()));
        assert!(matches!(bundle.insert("./a", vec![], &LIMITS), Err(BundleError::Duplicate { .. })));
    }

    fn archive_with(path: &[u8], entry_type: tar::EntryType) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        // Write the raw name so the test can smuggle paths the builder would refuse.
        header.as_old_mut().name[..path.len()].copy_from_slice(path);
        header.set_size(0);
        header.set_entry_type(entry_type);
        if entry_type == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, std::io::empty()).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn hostile_archives_are_refused() {
        let check = |path: &[u8], entry_type, expect: fn(&BundleError) -> bool| {
            let error = Bundle::from_tar(&archive_with(path, entry_type), &LIMITS).unwrap_err();
            assert!(expect(&error), "{error:?}");
        };
        check(b"../evil", tar::EntryType::Regular, |e| matches!(e, BundleError::PathTraversal { .. }));
        check(b"/etc/cron.d/x", tar::EntryType::Regular, |e| matches!(e, BundleError::AbsolutePath { .. }));
        check(b"link", tar::EntryType::Symlink, |e| matches!(e, BundleError::Symlink { .. }));
        check(b"dev", tar::EntryType::Char, |e| matches!(e, BundleError::NotAFile { .. }));
        let garbage = vec![b'x'; 1024];
        assert!(matches!(Bundle::from_tar(&garbage, &LIMITS), Err(BundleError::Corrupt { .. })));
    }
}

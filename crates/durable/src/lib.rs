//! Writing a file so that a crash or a concurrent writer leaves either the old file or a
//! complete new one, never a mix: the contents go to a temporary file created exclusively under
//! a unique name in the same folder (so no other process can have opened or planted it), are
//! synced, renamed over the target, and the folder is synced so the rename itself survives.
//! Used for the platform's keys, the CLI's credentials and the blob store.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` atomically and durably, readable by its owner only (0600).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates with O_EXCL and mode 0600 under a random name.
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn the_file_is_whole_private_and_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, ["keys.json"], "no temporary file is left behind");
    }

    /// Writers racing on one file: every read finds one writer's whole contents, and no writer
    /// fails because another's temporary file is in the way.
    #[test]
    fn racing_writers_never_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("credentials.json"));
        write_private(&path, &[b'a'; 4096]).unwrap();
        let writers = 8;
        let barrier = Arc::new(Barrier::new(writers + 1));
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let contents = vec![b'b' + writer as u8; 4096];
                    barrier.wait();
                    for _ in 0..50 {
                        write_private(&path, &contents).unwrap();
                    }
                })
            })
            .collect();
        barrier.wait();
        for _ in 0..200 {
            let read = std::fs::read(&*path).unwrap();
            assert_eq!(read.len(), 4096);
            assert!(read.iter().all(|byte| *byte == read[0]), "one writer's contents, whole");
        }
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

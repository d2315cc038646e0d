//! Settings files and keys: `config check`, `config show` and `hash-key`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

/// `hamgate config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a settings file (with the environment applied, as `serve` would): prints `ok`,
    /// or the error naming the key, and exits 1.
    Check {
        /// The TOML settings file.
        file: PathBuf,
    },
    /// Print the effective settings as TOML: defaults, the file, the environment (the
    /// reputation secret masked).
    Show {
        /// The TOML settings file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs `hamgate config ...`.
pub fn cmd_config(c: ConfigCommand) -> Result<()> {
    match c {
        ConfigCommand::Check { file } => {
            let settings = hamgate::config::Settings::load(Some(&file))?;
            settings.validate()?;
            println!("ok: {}", file.display());
            Ok(())
        }
        ConfigCommand::Show { config } => {
            let settings = hamgate::config::Settings::load(config.as_deref())?;
            print!("{}", settings.to_toml_masked()?);
            Ok(())
        }
    }
}

/// Prints the SHA-256 of an API key, as the settings' `key_sha256` wants it.
pub fn cmd_hash_key(key: &str) -> Result<()> {
    println!("{}", hamgate::config::hash_key(key));
    Ok(())
}

//! `berth import marathon APP.json`: a Marathon app definition as a Berth
//! service Job (YAML on stdout, or `-o json`), refusing what it cannot
//! carry over (exit 2, every field named by its JSON path) unless
//! `--ignore-unsupported` makes those warnings.
//!
//! Layout:
//! - `app`: the Marathon app fields Berth maps (serde types) and Marathon's defaults.
//! - `fields`: every other field of an app: ignored, noted, or unsupported.
//! - `map`: the pure mapping, app → Job (and Framework), with `Options`.
//! - `names`, `ports`, `health`, `rollout`: ids and labels, port definitions, health
//!   checks, the upgrade strategy.
//! - `render`: YAML with comments, or JSON.
//! - `error`: `Problem` (a field and what is wrong) and `ImportError`.

mod app;
mod error;
mod fields;
mod health;
mod map;
mod names;
mod ports;
mod render;
mod rollout;

#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

pub use error::ImportError;
pub use map::{Options, import};
pub use render::{Format, render};

/// The exit code of an app that cannot be imported.
pub const EXIT_REFUSED: i32 = 2;

#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    from: From,
}

#[derive(Subcommand)]
enum From {
    /// Turn a Marathon app definition (JSON) into a Berth service Job manifest
    Marathon(MarathonArgs),
}

#[derive(Args)]
struct MarathonArgs {
    /// The app definition (JSON); `-` reads stdin
    #[arg(value_name = "APP_JSON", required_unless_present = "filename", conflicts_with = "filename")]
    file: Option<PathBuf>,
    /// The app definition (JSON); `-` reads stdin
    #[arg(short = 'f', long = "filename", value_name = "APP_JSON")]
    filename: Option<PathBuf>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    output: Format,
    /// The namespace of the objects (default: none, so `kubectl apply -n` decides)
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// The Job's name (default: the app id's segments joined by `-`: `/shop/web` → `shop-web`)
    #[arg(long)]
    name: Option<String>,
    /// The Framework (scheduler builtin-service) that runs the Job
    #[arg(long, default_value = "services")]
    framework: String,
    /// Also print that Framework, first
    #[arg(long)]
    with_framework: bool,
    /// Drop fields Berth cannot map, with a warning on stderr, instead of refusing the app
    #[arg(long)]
    ignore_unsupported: bool,
}

/// Runs `berth import …`; an app that cannot be imported exits with
/// [`EXIT_REFUSED`] after saying why on stderr.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let From::Marathon(args) = args.from;
    let source = args.file.or(args.filename).context("give the app definition's file, or - for stdin")?;
    let json = if source.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the app definition from stdin")?;
        s
    } else {
        std::fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?
    };
    let options = Options {
        name: args.name,
        namespace: args.namespace,
        framework: args.framework,
        with_framework: args.with_framework,
        ignore_unsupported: args.ignore_unsupported,
    };
    match import(&json, &options) {
        Ok(imported) => {
            for w in &imported.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", render(&imported, args.output));
            Ok(())
        }
        Err(e) => {
            let from = if source.as_os_str() == "-" { "stdin".into() } else { source.display().to_string() };
            eprintln!("error: {from}: {e}");
            if let ImportError::Refused(problems) = &e
                && problems.iter().any(|p| p.severity == error::Severity::Unsupported)
            {
                eprintln!(
                    "(--ignore-unsupported drops unsupported fields with a warning; invalid values stay refused)"
                );
            }
            std::process::exit(EXIT_REFUSED);
        }
    }
}

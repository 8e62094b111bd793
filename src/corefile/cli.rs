//! `clusterdns import-corefile FILE`: prints the translated config on stdout and every
//! finding on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{ImportError, Severity};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The Corefile (as in CoreDNS's ConfigMap: `kubectl -n kube-system get cm coredns
    /// -o jsonpath='{.data.Corefile}'`). `{$VAR}` is taken from the environment.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write the config even when some directives cannot be translated: they are listed
    /// as NOT TRANSLATED at the top of the output (and on stderr), and left out.
    #[arg(long)]
    pub lenient: bool,
}

/// Exit 0 with the TOML on stdout; 2 when the Corefile cannot be read or holds what
/// clusterdns cannot honour (without `--lenient`), nothing on stdout then.
pub fn run(args: &ImportArgs) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    match super::import(&args.file, &env, args.lenient) {
        Ok(t) => {
            for f in &t.findings {
                eprintln!("clusterdns: {f}");
            }
            print!("{}", t.toml);
            ExitCode::SUCCESS
        }
        Err(ImportError::Unsupported { findings, .. }) => {
            for f in &findings {
                eprintln!("clusterdns: {f}");
            }
            let n = findings
                .iter()
                .filter(|f| f.severity == Severity::Unsupported)
                .count();
            eprintln!(
                "clusterdns: {} cannot be translated ({n} of the above); change the Corefile as each says, or pass --lenient to write the config without them",
                args.file.display()
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("clusterdns: {e}");
            ExitCode::from(2)
        }
    }
}

//! `make report` — builds results/index.html: every experiment's charts, summary table (mean ± std over
//! seeds), config, run metadata and expected result; experiments not run yet are listed with their make target.
use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Build results/index.html from the results folder (static; open it from the file system)")]
struct Cli {
    /// Results root.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(|| -> Result<()> {
        let cli = Cli::parse();
        let n = rnnlab::report::write(&cli.out)?;
        println!(
            "wrote {} ({n} of {} experiments present)",
            cli.out.join("index.html").display(),
            rnnlab::report::SECTIONS.len()
        );
        Ok(())
    })
}

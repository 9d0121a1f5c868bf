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
    /// Instead of the page: copy the headline figures into this folder (the README's, `make figures`).
    #[arg(long, value_name = "DIR")]
    figures: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(|| -> Result<()> {
        let cli = Cli::parse();
        if let Some(dest) = &cli.figures {
            let copied = rnnlab::report::figures(&cli.out, dest)?;
            println!("copied {} figures into {}: {}", copied.len(), dest.display(), copied.join(", "));
            return Ok(());
        }
        let n = rnnlab::report::write(&cli.out)?;
        println!(
            "wrote {} ({n} of {} experiments present)",
            cli.out.join("index.html").display(),
            rnnlab::report::SECTIONS.len()
        );
        Ok(())
    })
}

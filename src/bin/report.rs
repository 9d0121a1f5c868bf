//! `make report` — builds results/index.html: every experiment's charts, summary table (mean ± std over
//! seeds), config, run metadata and expected result; experiments not run yet are listed with their make target.
//! Also prints the registry for `make help`, `make all` and the README (`--list`, `--plan`, `--readme-table`).
use anyhow::Result;
use clap::Parser;
use rnnlab::experiments::{duration, plan, readme_table, REGISTRY};
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
    /// Instead of the page: list the experiments (make target, time on 2 cores, title), as `make help` does.
    #[arg(long)]
    list: bool,
    /// Instead of the page: what `make all` runs, one line each: name, config, planned seconds (tab-separated).
    #[arg(long)]
    plan: bool,
    /// With --plan: the quick configs (`make all QUICK=1`).
    #[arg(long, requires = "plan")]
    quick: bool,
    /// Instead of the page: print the README's table of experiments from the registry.
    #[arg(long)]
    readme_table: bool,
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(|| -> Result<()> {
        let cli = Cli::parse();
        if cli.list {
            for d in REGISTRY {
                println!("{:<18}{} ({})", d.name, d.title, duration(d.seconds));
            }
            return Ok(());
        }
        if cli.plan {
            for (d, config, seconds) in plan(cli.quick) {
                println!("{}\t{}\t{seconds}", d.name, config.display());
            }
            return Ok(());
        }
        if cli.readme_table {
            print!("{}", readme_table());
            return Ok(());
        }
        if let Some(dest) = &cli.figures {
            let copied = rnnlab::report::figures(&cli.out, dest)?;
            println!("copied {} figures into {}: {}", copied.len(), dest.display(), copied.join(", "));
            return Ok(());
        }
        let n = rnnlab::report::write(&cli.out)?;
        println!("wrote {} ({n} of {} experiments present)", cli.out.join("index.html").display(), REGISTRY.len());
        Ok(())
    })
}

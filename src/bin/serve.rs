//! `serve` (`make serve`): the playground — a local web page where every trained model under `results/` answers
//! an input of one's own, side by side by cell (`rnnlab::serve`).
use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    about = "The playground: every trained model under --results answers your input, side by side, in a local web page"
)]
struct Cli {
    /// Results root whose run folders (with model.safetensors) are served.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Port on 127.0.0.1 (0: any free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads for libtorch (default: one per core).
    #[arg(long)]
    threads: Option<i32>,
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(|| -> Result<()> {
        let cli = Cli::parse();
        if let Some(t) = cli.threads {
            anyhow::ensure!(t >= 1, "--threads {t}: must be >= 1");
            tch::set_num_threads(t);
        }
        let device = rnnlab::cli::parse_device(&cli.device)?;
        let t = std::time::Instant::now();
        let catalog = rnnlab::serve::Catalog::load(&cli.results, device)?;
        for s in &catalog.skipped {
            eprintln!("skipped {s}");
        }
        for p in rnnlab::serve::Panel::ALL {
            let models: Vec<&str> = catalog.of(p).map(|e| e.info.run.as_str()).collect();
            match models.len() {
                0 => eprintln!("{p:?}: no trained model ({} trains one)", p.make()),
                _ => eprintln!("{p:?}: {}", models.join(", ")),
            }
        }
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port))
                .await
                .with_context(|| format!("cannot listen on 127.0.0.1:{} (in use? pass --port)", cli.port))?;
            let addr = listener.local_addr()?;
            eprintln!(
                "{} models loaded in {:.1} s; serving http://{addr}/ (Ctrl-C stops)",
                catalog.entries.len(),
                t.elapsed().as_secs_f64()
            );
            rnnlab::serve::serve(listener, Arc::new(catalog)).await
        })
    })
}

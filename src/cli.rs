//! Command-line options shared by every experiment binary, and the set-up they imply (device, threads).
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use tch::Device;

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// YAML config file (see configs/; every key is commented there).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. --set train.epochs=3 --set model.hidden=128 (repeatable; YAML values).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// cpu, cuda, cuda:N, or auto (cuda when available).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Intra-op threads for libtorch (default: libtorch's choice, one per core).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Results root instead of the config's output.dir.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Redo runs whose folder already holds results (by default finished runs with the same config are
    /// reused and runs with a different config are refused).
    #[arg(long)]
    pub overwrite: bool,
}

impl Common {
    /// The config path, or the experiment's default.
    pub fn config_path(&self, default: &str) -> PathBuf {
        self.config.clone().unwrap_or_else(|| PathBuf::from(default))
    }

    /// Applies `--threads` and resolves `--device`.
    pub fn setup(&self) -> Result<Device> {
        if let Some(t) = self.threads {
            if t < 1 {
                bail!("--threads {t}: must be >= 1");
            }
            tch::set_num_threads(t);
        }
        parse_device(&self.device)
    }
}

/// Runs `body` and turns an error into one `error: ...` line on stderr (causes joined by ": ") and exit code 1.
pub fn run_main(body: impl FnOnce() -> Result<()>) -> std::process::ExitCode {
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn parse_device(s: &str) -> Result<Device> {
    let cuda_n = tch::Cuda::device_count();
    let need = |i: usize| -> Result<Device> {
        if (i as i64) < cuda_n {
            Ok(Device::Cuda(i))
        } else {
            bail!(
                "--device {s}: CUDA is not available here (libtorch sees {cuda_n} GPU(s)); use --device cpu, or build \
                 with a CUDA libtorch and RNNLAB_CUDA=1 (see README)"
            )
        }
    };
    match s {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" => need(0),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(i) => need(i),
            None => bail!("--device {s}: expected cpu, cuda, cuda:N or auto"),
        },
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

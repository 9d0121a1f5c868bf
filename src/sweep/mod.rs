//! Sweeps: every experiment runs through here. An experiment is a type implementing [`Experiment`] (where its
//! data comes from, what it adds to a trained run, what it draws at the end) and one or more registry entries
//! ([`Descriptor`], listed in `crate::experiments::REGISTRY`), each a config of it with its own name.
//!
//! - [`points`]: the config's `sweep` section → one typed, validated config per run, named by its values;
//! - [`run`]: each run gets its folder (finished ones are reused, so an interrupted sweep resumes), the data,
//!   a seeded model, the hooks and `crate::train::fit`; a failed run is counted and the sweep goes on; at the
//!   end `summary.csv` and the experiment's charts and table are made from every run folder of the grid;
//! - [`jobs`]: `--jobs N` worker processes, `--shard i/n`, `--only`;
//! - here: the trait, the registry entry, and the `main` of every experiment binary.
pub mod jobs;
pub mod points;
pub mod run;

pub use jobs::RunOptions;
pub use points::{points, Point};
pub use run::{run, run_point};

use crate::cli::{is_worker, Common, SweepArgs};
use crate::config::{self, Config, Loaded, Options, Validate};
use crate::data::{Dataset, Source};
use crate::model::Model;
use crate::results::{Meta, RunDir, Tag};
use crate::train::Outcome;
use anyhow::{bail, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The config of experiment `E`.
pub type Cfg<E> = Config<<E as Experiment>::Data, <E as Experiment>::Own>;

/// One experiment as the registry lists it: its one name (the results folder `results/<name>/`, the make
/// target, the config `configs/<name>.yaml`, the report's section), the binary that runs it, and what it shows.
#[derive(Debug)]
pub struct Descriptor {
    pub name: &'static str,
    /// The program that runs it: `target/release/<binary>` (`src/bin/<binary>.rs`).
    pub binary: &'static str,
    pub title: &'static str,
    /// The question it answers (the README's table of experiments).
    pub question: &'static str,
    /// Its classroom version (`make all QUICK=1`).
    pub quick: Quick,
    /// The file in `results/<name>/` with one row per run, which the report tabulates.
    pub summary: &'static str,
    /// The charts to look at first, each with what to see in it.
    pub lead: &'static [Chart],
    /// The result it should reach, as measured by `measured_by`.
    pub expected: &'static str,
    pub measured_by: &'static str,
    /// Wall time of the full config and of the quick one on 2 cores, in seconds (`make all` plans with them).
    pub seconds: u32,
    pub quick_seconds: u32,
    /// Whether `make all` runs it.
    pub in_all: bool,
}

/// What `make all QUICK=1` runs of an experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quick {
    /// `configs/quick/<name>.yaml`.
    Own,
    /// The full config (it is quick already).
    Full,
    /// Nothing.
    Skip,
}

/// A chart of an experiment (`results/<name>/<stem>.png`) and what to look at in it.
#[derive(Debug)]
pub struct Chart {
    pub stem: &'static str,
    pub look: &'static str,
}

impl Descriptor {
    /// `configs/<name>.yaml`.
    pub fn config(&self) -> PathBuf {
        PathBuf::from(format!("configs/{}.yaml", self.name))
    }

    /// The config `make all QUICK=1` runs, if any.
    pub fn quick_config(&self) -> Option<PathBuf> {
        match self.quick {
            Quick::Own => Some(PathBuf::from(format!("configs/quick/{}.yaml", self.name))),
            Quick::Full => Some(self.config()),
            Quick::Skip => None,
        }
    }

    /// `<root>/<name>`: the experiment's folder, where its runs, summary and charts go.
    pub fn folder(&self, root: &Path) -> PathBuf {
        root.join(self.name)
    }
}

/// A trained run, handed to [`Experiment::after`] with what the experiment kept for it.
pub struct Trained<'a, S> {
    pub model: &'a Model,
    pub data: &'a Dataset,
    pub run: &'a mut RunDir,
    pub outcome: &'a Outcome,
    /// What [`Experiment::dataset`] made for this run besides the data set.
    pub state: &'a mut S,
}

/// What [`Experiment::finish`] draws from: every run of the grid that has a folder.
pub struct Finish<'a, E: Experiment> {
    /// The results root (run folders are `Meta::dir(root)`).
    pub root: &'a Path,
    /// `<root>/<name>`: where the summary and the charts go.
    pub dir: PathBuf,
    pub cfg: &'a Cfg<E>,
    pub runs: &'a [Meta],
}

/// The summary's columns of an experiment: the keys that identify a run (besides every swept key, which is
/// always a column) and the results, from `meta.yaml`.
pub struct Columns {
    pub keys: Vec<&'static str>,
    pub results: Vec<&'static str>,
}

/// One experiment: its data, what it adds to a run, what it makes of all runs. The methods take `&self`: what a
/// run needs between its hooks lives in [`PerRun`](Self::PerRun), made with the run's data.
pub trait Experiment: Sized {
    /// The `data` section.
    type Data: Serialize + DeserializeOwned + Validate + Clone + Default + std::fmt::Debug + Source;
    /// The experiment's own section (`()`: none).
    type Own: Options;
    /// What one run keeps from its data for its hooks (`()`: nothing).
    type PerRun: Default;
    /// The columns of `summary.csv`.
    fn columns(&self) -> Columns;
    /// Checks the data of the runs about to be made once, before any starts (a missing or corrupt data set
    /// stops the sweep here, not once per run).
    fn check(&self, cfgs: &[&Cfg<Self>]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        cfgs.iter().filter(|c| seen.insert(format!("{:?}", c.data))).try_for_each(|c| c.data.check())
    }
    /// Tags of a run besides its swept values (e.g. a fixed length every row should carry).
    fn tags(&self, _cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        vec![]
    }
    /// The data of one run and what the hooks keep of it (a `crate::data::Refused` error records the run as
    /// refused).
    fn dataset(&self, cfg: &Cfg<Self>) -> Result<(Dataset, Self::PerRun)> {
        Ok((cfg.data.load(cfg.train.seed)?, Self::PerRun::default()))
    }
    /// Steps between calls of [`during`](Self::during) (0: only at step 0 and after the last step); None: no
    /// calls.
    fn during_every(&self, _cfg: &Cfg<Self>) -> Option<usize> {
        None
    }
    /// Called during training at step 0, every [`during_every`](Self::during_every) steps and after the last.
    fn during(
        &self,
        _cfg: &Cfg<Self>,
        _state: &mut Self::PerRun,
        _model: &Model,
        _step: usize,
        _run: &mut RunDir,
    ) -> Result<()> {
        Ok(())
    }
    /// After a new run trained (not for a reused one): its own files and numbers.
    fn after(&self, _cfg: &Cfg<Self>, _t: Trained<Self::PerRun>) -> Result<()> {
        Ok(())
    }
    /// After all runs: charts and anything else built from the run folders; returns what to print (the table
    /// and the charts written).
    fn finish(&self, f: &Finish<Self>) -> Result<String>;
}

/// The entry of `registry` called `name`.
pub fn entry<'r>(registry: &'r [Descriptor], name: &str) -> Result<&'r Descriptor> {
    match registry.iter().find(|d| d.name == name) {
        Some(d) => Ok(d),
        None => {
            let names: Vec<&str> = registry.iter().map(|d| d.name).collect();
            bail!("no experiment called `{name}` in the registry (there are: {})", names.join(", "))
        }
    }
}

/// The `main` of an experiment binary without subcommands: [`binary_with`] with none.
pub fn binary<E: Experiment>(e: E, name: &str, registry: &'static [Descriptor]) -> std::process::ExitCode {
    /// No subcommands: the binary only runs its sweep.
    #[derive(clap::Subcommand)]
    enum None {}
    binary_with::<E, None>(e, name, registry, |cmd, _| match cmd {})
}

/// The `main` of the binary of experiment `name` (its registry entry gives the default config and `--help`)
/// with subcommands (`names predict`, `generate sample`, ...): without one the binary runs the sweep, with one it
/// calls `cmd` with the parsed subcommand and the shared options.
pub fn binary_with<E: Experiment, C: clap::Subcommand>(
    e: E,
    name: &str,
    registry: &'static [Descriptor],
    cmd: impl FnOnce(C, &Common) -> Result<()>,
) -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    #[derive(clap::Parser)]
    struct Cli<C: clap::Subcommand> {
        #[command(subcommand)]
        cmd: Option<C>,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        sweep: SweepArgs,
    }
    crate::cli::run_main(|| {
        let d = entry(registry, name)?;
        let others: Vec<&str> =
            registry.iter().filter(|o| o.binary == d.binary && o.name != d.name).map(|o| o.name).collect();
        let mut about = format!("{} — {}\n\nExpected ({}): {}.", d.title, d.question, d.measured_by, d.expected);
        for o in &others {
            about += &format!("\nAlso runs {o}: --config configs/{o}.yaml (make {o}).");
        }
        let matches = Cli::<C>::command().about(about).get_matches();
        let cli = Cli::<C>::from_arg_matches(&matches)?;
        match cli.cmd {
            Some(c) => cmd(c, &cli.common),
            None => main(e, d, registry, &cli.common, &cli.sweep),
        }
    })
}

/// What an experiment binary does: load the config (`--config`, else the entry's; its `experiment:` key says
/// which entry of this binary it belongs to), apply `--set`, then [`run`] (or [`jobs::parallel`]).
pub fn main<E: Experiment>(
    e: E,
    default: &'static Descriptor,
    registry: &'static [Descriptor],
    common: &Common,
    args: &SweepArgs,
) -> Result<()> {
    let path = common.config.clone().unwrap_or_else(|| default.config());
    let loaded: Loaded<Cfg<E>> = config::load(&path, &common.set)?;
    let d = match loaded.experiment.as_deref() {
        None => default,
        Some(name) => {
            let d = entry(registry, name).map_err(|err| anyhow::anyhow!("{}: experiment: {err}", path.display()))?;
            if d.binary != default.binary {
                bail!(
                    "{}: experiment `{name}` runs with target/release/{} (make {name}), not {}",
                    path.display(),
                    d.binary,
                    default.binary
                );
            }
            d
        }
    };
    let device = common.setup()?;
    let root = common.out.clone().unwrap_or_else(|| loaded.cfg.output.dir.clone());
    let opts = RunOptions {
        shard: args.shard()?,
        merge_only: args.merge_only,
        only: args.only.clone(),
        overwrite: common.overwrite,
        device,
        worker: is_worker(),
    };
    if args.jobs > 1 && !opts.worker && !opts.merge_only {
        let threads = common.threads.map_or((tch::get_num_threads() as usize / args.jobs).max(1), |t| t as usize);
        return jobs::parallel(&e, d, &loaded, &common.set, &root, &opts, (args.jobs, threads));
    }
    run(&e, d, &loaded, &common.set, &root, &opts)
}

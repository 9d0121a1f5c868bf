//! The experiments: [`REGISTRY`] names every one of them, once; one module per program implements
//! [`crate::sweep::Experiment`] (its data section, what it adds to a run, its charts). A registry entry is a
//! config of one of these programs under its own name: `make <name>` runs `configs/<name>.yaml` with
//! `target/release/<binary>` into `results/<name>/`, the report shows its section, `make all` plans with its
//! times and the README's table of experiments is checked against it (`tests/registry.rs`).
//!
//! The benchmark trains no runs: plain functions in [`bench`].
pub mod bench;
pub mod demo;
pub mod generate;
pub mod imdb;
pub mod names;
pub mod seq2seq;
pub mod sweep_imdb;
pub mod tagging;
pub mod vanishing;

use crate::sweep::{Chart, Descriptor, Quick};

/// Every experiment, cheapest first (the order of `make all`, the README's table and the report).
pub const REGISTRY: &[Descriptor] = &[
    Descriptor {
        name: "demo",
        binary: "demo",
        title: "Offline demo: memory over distance (synthetic task)",
        question: "Can the cell carry the first token over L steps? (synthetic, offline)",
        quick: Quick::Full,
        summary: "summary.csv",
        lead: &[Chart {
            stem: "accuracy_vs_length",
            look: "The same on a task made for it: the class is the first token of L; the vanilla RNN falls to \
                   chance as L grows, GRU and LSTM do not.",
        }],
        expected: "L = 200: RNN 0.251 (chance 0.25), GRU and LSTM 1.000",
        measured_by: "make demo",
        seconds: 48,
        quick_seconds: 48,
        in_all: true,
    },
    Descriptor {
        name: "vanishing",
        binary: "vanishing",
        title: "Vanishing and exploding gradients",
        question: "How fast does the gradient fade with distance?",
        quick: Quick::Full,
        summary: "decay_rates.csv",
        lead: &[
            Chart {
                stem: "grad_vs_distance_synthetic",
                look: "The gradient reaching input x_t against its distance from the readout (log scale): a \
                       straight falling line is exponential decay. After training it stays flat for the gated \
                       cells only.",
            },
            Chart {
                stem: "exploding",
                look: "Without clipping, large recurrent weights keep most seeds from learning.",
            },
        ],
        expected: "trained: RNN ×0.835 per step (10⁻¹⁶ over 200 steps), GRU ×0.986, LSTM ×0.926; clipping: 5 of 5 \
                   seeds learn, 2 of 5 without",
        measured_by: "make vanishing",
        seconds: 53,
        quick_seconds: 53,
        in_all: true,
    },
    Descriptor {
        name: "names",
        binary: "names",
        title: "Names → language (18 languages)",
        question: "Which language is a surname? (18 classes)",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[
            Chart { stem: "confusion_lstm", look: "Which languages the LSTM confuses (rows sum to 1)." },
            Chart {
                stem: "prior_tradeoff",
                look: "Dividing out the training prior trades accuracy for balanced accuracy.",
            },
        ],
        expected: "LSTM 0.848 ± 0.007, GRU 0.846 ± 0.002, RNN 0.807 ± 0.002 (majority class 0.469)",
        measured_by: "make names",
        seconds: 219,
        quick_seconds: 72,
        in_all: true,
    },
    Descriptor {
        name: "imdb",
        binary: "imdb",
        title: "IMDB sentiment, first 400 tokens",
        question: "Sentiment from raw text, first 400 words",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[Chart { stem: "test_accuracy", look: "Test accuracy per cell from raw text, chance dashed." }],
        expected: "GRU 0.888, LSTM 0.871, RNN 0.667 (n = 1)",
        measured_by: "make imdb",
        seconds: 454,
        quick_seconds: 78,
        in_all: true,
    },
    Descriptor {
        name: "seq2seq",
        binary: "seq2seq",
        title: "Sequence to sequence, with and without attention",
        question: "Does one context vector suffice? Attention?",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[
            Chart {
                stem: "accuracy_vs_length",
                look: "An encoder squeezes a sentence into one vector: without attention (dashed) the decoder's \
                       accuracy falls as the source grows; with attention (solid) it holds.",
            },
            Chart {
                stem: "attention_reverse_1",
                look: "Where each output word looks in the source: the anti-diagonal.",
            },
        ],
        expected: "dates → ISO with attention 0.998–1.000 (RNN 0.636 without); reversing sentences of 61+ words: \
                   GRU/LSTM 0.41/0.47 with attention, 0.13/0.17 without",
        measured_by: "make seq2seq",
        seconds: 1497,
        quick_seconds: 30,
        in_all: true,
    },
    Descriptor {
        name: "tagging",
        binary: "tagging",
        title: "Part-of-speech tagging (Brown corpus)",
        question: "Part of speech, reading both ways (Brown)",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[
            Chart {
                stem: "accuracy",
                look: "A word's part of speech depends on the words after it too: two-directional cells beat \
                       one-directional ones, and all beat the most-frequent-tag baseline (dashed), most on unseen \
                       words.",
            },
            Chart { stem: "per_tag_f1", look: "F1 per universal tag." },
        ],
        expected: "BiLSTM 0.975, BiGRU 0.974 (unseen words 0.874/0.869); one-way 0.954–0.957; most frequent tag 0.940",
        measured_by: "make tagging",
        seconds: 849,
        quick_seconds: 60,
        in_all: true,
    },
    Descriptor {
        name: "generate",
        binary: "generate",
        title: "Generation: names per language, IMDB review text",
        question: "Character models: names per language, review text",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[Chart {
            stem: "perplexity_vs_bptt",
            look: "Review text: validation perplexity against the truncated-BPTT window.",
        }],
        expected: "names perplexity GRU 6.32, LSTM 6.30, RNN 7.48 per character; 85–89 % of sampled names new",
        measured_by: "make generate",
        seconds: 673,
        quick_seconds: 30,
        in_all: true,
    },
    Descriptor {
        name: "names-distance",
        binary: "names",
        title: "Names with k filler steps before the readout",
        question: "Names followed by k filler steps",
        quick: Quick::Skip,
        summary: "summary.csv",
        lead: &[Chart {
            stem: "accuracy_vs_distance",
            look: "Surnames followed by k filler steps: the vanilla RNN forgets the name within 20 to 50 steps; \
                   GRU and LSTM carry it 200.",
        }],
        expected: "k = 200: GRU 0.798, LSTM 0.770 (0.809 / 0.811 at k = 0); RNN at the majority class (0.469) from \
                   k = 50",
        measured_by: "make names-distance",
        seconds: 1364,
        quick_seconds: 0,
        in_all: true,
    },
    Descriptor {
        name: "sweep-imdb",
        binary: "sweep-imdb",
        title: "IMDB: accuracy vs sequence length (three modes)",
        question: "IMDB by length: truncate / min_len / distance",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[
            Chart {
                stem: "story",
                look: "Left: as the filler between the review's first 50 words and the readout grows, GRU and LSTM \
                       keep their accuracy and the vanilla RNN drops to chance. Right, why: the gradient that \
                       reaches those words stays large for the gated cells and vanishes for the vanilla RNN.",
            },
            Chart { stem: "accuracy_vs_length_truncate", look: "Reviews cut to their first L words." },
        ],
        expected: "950 filler steps: GRU 0.734, LSTM 0.734 (0.736/0.732 without filler), RNN at chance \
                   (0.496–0.502) from 50 steps on",
        measured_by: "make sweep-imdb",
        seconds: 2095,
        quick_seconds: 222,
        in_all: true,
    },
    Descriptor {
        name: "translate",
        binary: "seq2seq",
        title: "Translation: attention on real sentences (held-out Bible books, en → fr)",
        question: "Does attention keep long sentences? (Bahdanau's Figure 2)",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[
            Chart {
                stem: "bleu_vs_length",
                look: "BLEU against the source's length in words: without attention (dashed) the translation \
                       degrades as sentences grow, with attention it holds.",
            },
            Chart { stem: "attention_3", look: "Where each French piece looks in the English verse." },
        ],
        expected:
            "GRU, beam 5: BLEU 12.97 ± 1.46 with attention (3 seeds), 7.18 without; seed 0, > 50 words 14.92 vs 7.16",
        measured_by: "make translate",
        seconds: 3940,
        quick_seconds: 292,
        in_all: true,
    },
    Descriptor {
        name: "shakespeare",
        binary: "generate",
        title: "Shakespeare: Karpathy's char-rnn, held-out works",
        question: "How well do RNN, GRU and LSTM write Shakespeare? (equal size, equal parameters)",
        quick: Quick::Own,
        summary: "summary.csv",
        lead: &[
            Chart {
                stem: "loss_vs_time",
                look: "Validation loss on held-out works against training time: the gated cells learn faster and \
                       further than the vanilla RNN of the same parameter count.",
            },
            Chart {
                stem: "cell_line_position",
                look: "One cell of the trained model over a held-out passage: it counts the characters since the \
                       line began; under each character the five likeliest next ones.",
            },
            Chart { stem: "gate_saturation", look: "How often each gate unit is nearly closed or nearly open." },
        ],
        expected: "one epoch, test nats/char: GRU 1.563 (equal parameters) and 1.593 (256), LSTM 1.645, vanilla RNN \
                   1.689 (equal parameters) and 1.746 (256)",
        measured_by: "make shakespeare",
        seconds: 2071,
        quick_seconds: 91,
        in_all: true,
    },
    Descriptor {
        name: "bench",
        binary: "bench",
        title: "Benchmark: speed and memory",
        question: "How fast, against PyTorch eager?",
        quick: Quick::Skip,
        summary: "bench.csv",
        lead: &[],
        expected: "training vs PyTorch eager, same batches: RNN 1.93× (names) / 1.26× (imdb), GRU 1.96× / 1.22×, \
                   LSTM 1.33× / 1.21×; character LM GRU 1.47×, LSTM 1.12×; translation GRU 1.46×, LSTM 1.31×; \
                   peak memory below PyTorch's on every row",
        measured_by: "make bench-compare",
        seconds: 1011,
        quick_seconds: 0,
        in_all: false,
    },
];

/// The order in which the report's first section tells the lesson: each experiment's first lead chart.
pub const LESSON: &[&str] =
    &["sweep-imdb", "demo", "vanishing", "translate", "seq2seq", "shakespeare", "tagging", "names-distance"];

/// The `main` of the binary that runs registry entry `name` (and the other entries of the same binary, by their
/// configs' `experiment:` key).
pub fn binary<E: crate::sweep::Experiment>(e: E, name: &str) -> std::process::ExitCode {
    crate::sweep::binary(e, name, REGISTRY)
}

/// [`binary`] with subcommands (`names predict`, `generate sample`, ...): see [`crate::sweep::binary_with`].
pub fn binary_with<E: crate::sweep::Experiment, C: clap::Subcommand>(
    e: E,
    name: &str,
    cmd: impl FnOnce(C, &crate::cli::Common) -> anyhow::Result<()>,
) -> std::process::ExitCode {
    crate::sweep::binary_with(e, name, REGISTRY, cmd)
}

/// A duration as the README writes it: `48 s`, `3 min 39 s`, `1 h 05 min`.
pub fn duration(seconds: u32) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600 + 30) / 60),
    }
}

/// The README's table of experiments, row by row from the registry (`tests/registry.rs` checks that the README
/// holds exactly this; `report --readme-table` prints it).
pub fn readme_table() -> String {
    let mut t = String::from(
        "| make target | the question | time | headline result (test set) | look at |\n|---|---|---|---|---|\n",
    );
    for d in REGISTRY {
        let look: Vec<String> = d.lead.iter().map(|c| format!("`{}`", c.stem)).collect();
        let look = if look.is_empty() { format!("`results/{}/`", d.name) } else { look.join(", ") };
        t += &format!("| `{}` | {} | {} | {} | {} |\n", d.name, d.question, duration(d.seconds), d.expected, look);
    }
    t
}

/// What `make all` runs, cheapest first: each experiment with the config it runs and its planned seconds (the
/// quick configs with `quick`).
pub fn plan(quick: bool) -> Vec<(&'static Descriptor, std::path::PathBuf, u32)> {
    REGISTRY
        .iter()
        .filter(|d| d.in_all)
        .filter_map(|d| match quick {
            false => Some((d, d.config(), d.seconds)),
            true => d.quick_config().map(|c| (d, c, d.quick_seconds)),
        })
        .collect()
}

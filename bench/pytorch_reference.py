"""The benchmark protocols in PyTorch eager, on the exact batches `target/release/bench` exported.

    make bench-compare            # runs this interleaved with the Rust benchmark and prints the ratios
    python bench/pytorch_reference.py --batches results/bench/batches --protocols names,imdb --out x.csv

Same models (nn.RNN / nn.GRU / nn.LSTM, batch_first, hidden 128, one layer; one-hot input for names,
embedding 64 for imdb; linear head on the output at each sequence's last real step), same optimiser (Adam 1e-3,
gradient-norm clip 5 for imdb), same threads, same warm-up and timed passes, median reported. The loop is the
idiomatic one: loss.item() every batch for logging. Writes the same columns as bench.csv.
"""
import argparse
import csv
import struct
import time

import torch
from torch import nn

BATCH, HIDDEN, EMBED, LR, CLIP_IMDB = 64, 128, 64, 1e-3, 5.0
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def read_batches(path):
    raw = open(path, "rb").read()
    data = torch.frombuffer(bytearray(raw), dtype=torch.int64)
    n_train, n_test = int(data[0]), int(data[1])
    at, out = 2, []
    for _ in range(n_train + n_test):
        b, t = int(data[at]), int(data[at + 1])
        at += 2
        tokens = data[at:at + b * t].view(b, t).clone()
        at += b * t
        lengths = data[at:at + b].clone()
        at += b
        labels = data[at:at + b].clone()
        at += b
        out.append((tokens, lengths, labels))
    return out[:n_train], out[n_train:]


class Model(nn.Module):
    def __init__(self, cell, vocab, classes, onehot):
        super().__init__()
        self.vocab, self.onehot = vocab, onehot
        self.embed = None if onehot else nn.Embedding(vocab, EMBED, padding_idx=0)
        self.rnn = CELLS[cell](vocab - 1 if onehot else EMBED, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, classes)

    def forward(self, tokens, lengths):
        if self.onehot:
            x = nn.functional.one_hot(tokens, self.vocab)[..., 1:].float()
        else:
            x = self.embed(tokens)
        out, _ = self.rnn(x)
        last = out[torch.arange(out.shape[0]), lengths - 1]
        return self.head(last)


def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(protocol, cell, train, test, vocab, classes, warmup, repeats):
    reset_peak()
    torch.manual_seed(0)
    onehot = protocol == "names"
    model = Model(cell, vocab, classes, onehot)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    clip = CLIP_IMDB if protocol == "imdb" else None
    loss_fn = nn.CrossEntropyLoss()

    def step(tokens, lengths, labels):
        opt.zero_grad()
        loss = loss_fn(model(tokens, lengths), labels)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss.item()

    model.train()
    warm, timed = train[:warmup], train[warmup:]
    for b in warm:
        step(*b)
    seqs = sum(b[0].shape[0] for b in timed)
    tokens = sum(int(b[1].sum()) for b in timed)
    padded = sum(b[0].shape[1] for b in timed) / max(len(timed), 1)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for b in timed:
            step(*b)
        times.append(time.perf_counter() - t)
    train_rss = peak_rss_mb()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(t, l).argmax(-1) == y).sum()) for t, l, y in test)
        acc = correct / sum(len(y) for _, _, y in test)
    reset_peak()
    infer = []
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            for tok, l, y in timed:
                int((model(tok, l).argmax(-1) == y).sum())
            infer.append(time.perf_counter() - t)
    infer_rss = peak_rss_mb()
    inp = vocab - 1 if onehot else EMBED
    fpt = 2.0 * GATES[cell] * HIDDEN * (inp + HIDDEN)
    rows = []
    for phase, secs, rss, mult, a in [("train", sorted(times)[len(times) // 2], train_rss, 3.0, acc),
                                      ("infer", sorted(infer)[len(infer) // 2], infer_rss, 1.0, float("nan"))]:
        rows.append({
            "framework": "pytorch", "protocol": protocol, "model": cell, "phase": phase, "impl": "fused",
            "batch": BATCH, "seq_len": padded, "seq_per_s": seqs / secs, "tokens_per_s": tokens / secs,
            "peak_rss_mb": rss, "gflops": mult * fpt * seqs * padded / secs / 1e9, "acc": a,
            "threads": torch.get_num_threads(),
        })
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", required=True, help="folder with names.bin / imdb.bin from the Rust bench")
    p.add_argument("--protocols", default="names,imdb")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--vocab-names", type=int, default=59)
    p.add_argument("--vocab-imdb", type=int, default=20003)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = []
    for protocol in a.protocols.split(","):
        train, test = read_batches(f"{a.batches}/{protocol}.bin")
        vocab = a.vocab_names if protocol == "names" else a.vocab_imdb
        classes = 18 if protocol == "names" else 2
        for cell in CELLS:
            for r in measure(protocol, cell, train, test, vocab, classes, a.warmup, a.repeats):
                print(f"{r['protocol']:<6} {r['model']:<5} {r['phase']:<6} {r['seq_per_s']:>9.1f} seq/s "
                      f"{r['peak_rss_mb']:>7.1f} MB acc {r['acc']:.3f}", flush=True)
                rows.append(r)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()

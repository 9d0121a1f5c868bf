"""The benchmark protocols in PyTorch eager, on the exact batches `target/release/bench` exported.

    make bench-compare            # runs this interleaved with the Rust benchmark and prints the ratios
    python bench/pytorch_reference.py --batches results/bench/batches --protocols names,imdb --out x.csv

Same models (nn.RNN / nn.GRU / nn.LSTM, batch_first, hidden 128, one layer; one-hot input for names,
embedding 64 for imdb; linear head on the output at each sequence's last real step; charlm: a character language
model, embedding 64, 2 layers of 256, no dropout, a head at every step, the state carried from batch to batch and
detached, as char-rnn trains; translate: rnnlab's encoder-decoder, embedding 128, a bidirectional encoder of 256
over packed sequences, a Luong decoder with dot ("general") attention, teacher-forced, no dropout), same optimiser (Adam 1e-3, gradient-norm clip 5 for imdb and charlm), same threads,
same warm-up and timed passes, median reported. The loop is the idiomatic one: loss.item() every batch for
logging. Writes the same columns as bench.csv.
"""
import argparse
import csv
import ctypes
import gc
import struct
import time

import torch
from torch import nn

BATCH, HIDDEN, EMBED, LR, CLIP = 64, 128, 64, 1e-3, 5.0
CHARLM_LAYERS, CHARLM_HIDDEN = 2, 256
TRANSLATE_EMBED, TRANSLATE_HIDDEN, BOS = 128, 256, 1
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def read_batches(path):
    raw = open(path, "rb").read()
    data = torch.frombuffer(bytearray(raw), dtype=torch.int64)
    n_train, n_test, vocab, classes = (int(v) for v in data[:4])
    at, out = 4, []
    for _ in range(n_train + n_test):
        b, t = int(data[at]), int(data[at + 1])
        at += 2
        tokens = data[at:at + b * t].view(b, t).clone()
        at += b * t
        lengths = data[at:at + b].clone()
        at += b
        n = int(data[at])
        labels = data[at + 1:at + 1 + n].clone()
        at += 1 + n
        if n != b:
            labels = labels.view(b, -1)
        out.append((tokens, lengths, labels))
    return out[:n_train], out[n_train:], vocab, classes


class CharLM(nn.Module):
    """rnnlab's LanguageModel without dropout: embedding, stacked cell, a head over the vocabulary at every step
    (class k = token id k + 1; target 0 = no target)."""

    def __init__(self, cell, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, EMBED)
        self.rnn = CELLS[cell](EMBED, CHARLM_HIDDEN, num_layers=CHARLM_LAYERS, batch_first=True)
        self.head = nn.Linear(CHARLM_HIDDEN, vocab - 1)
        self.state = None

    def forward(self, tokens, lengths):
        out, state = self.rnn(self.embed(tokens), self.state)
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return self.head(out)


class Translator(nn.Module):
    """rnnlab's Seq2Seq with a Luong decoder and dot attention, teacher-forced (target ids: 0 padding, 1 start)."""

    def __init__(self, cell, sources, targets):
        super().__init__()
        e, h = TRANSLATE_EMBED, TRANSLATE_HIDDEN
        self.lstm = cell == "lstm"
        self.src_embed = nn.Embedding(sources, e, padding_idx=0)
        self.tgt_embed = nn.Embedding(targets, e, padding_idx=0)
        self.encoder = CELLS[cell](e, h, batch_first=True, bidirectional=True)
        self.decoder = CELLS[cell](e, h, batch_first=True)
        self.bridge = nn.Linear(2 * h, h)
        self.attn_w = nn.Linear(h, 2 * h, bias=False)
        self.combine = nn.Linear(3 * h, h)
        self.out = nn.Linear(h, targets)

    def forward(self, src, lengths, tgt):
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, last = self.encoder(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        last = last[0] if self.lstm else last
        h0 = torch.tanh(self.bridge(torch.cat([last[0], last[1]], 1))).unsqueeze(0)
        state = (h0, torch.zeros_like(h0)) if self.lstm else h0
        prev = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)
        dec, _ = self.decoder(self.tgt_embed(prev), state)
        scores = self.attn_w(dec).bmm(out.transpose(1, 2))
        pad = torch.arange(src.shape[1])[None, :] >= lengths[:, None]
        alpha = scores.masked_fill(pad[:, None, :], float("-inf")).softmax(-1)
        ctx = alpha.bmm(out)
        return self.out(torch.tanh(self.combine(torch.cat([dec, ctx], 2))))


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
    # As the Rust side: free what earlier rows left, return it to the system, then restart the peak.
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(protocol, cell, train, test, vocab, classes, warmup, repeats):
    reset_peak()
    torch.manual_seed(0)
    onehot = protocol == "names"
    lm, s2s = protocol == "charlm", protocol == "translate"
    if lm:
        model = CharLM(cell, vocab)
    elif s2s:
        model = Translator(cell, vocab, classes)
    else:
        model = Model(cell, vocab, classes, onehot)
    run = (lambda tokens, lengths, labels: model(tokens, lengths, labels)) if s2s else \
        (lambda tokens, lengths, labels: model(tokens, lengths))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    clip = None if protocol == "names" else CLIP
    ce = nn.CrossEntropyLoss(ignore_index=-1)
    ce0 = nn.CrossEntropyLoss(ignore_index=0)

    def loss_fn(logits, labels):
        if lm:
            return ce(logits.reshape(-1, vocab - 1), labels.reshape(-1) - 1)
        if s2s:
            return ce0(logits.reshape(-1, classes), labels.reshape(-1))
        return ce(logits, labels)

    def correct(logits, labels):
        if lm:
            return int(((logits.argmax(-1) + 1 == labels) & (labels > 0)).sum()), int((labels > 0).sum())
        if s2s:
            return int(((logits.argmax(-1) == labels) & (labels > 0)).sum()), int((labels > 0).sum())
        return int((logits.argmax(-1) == labels).sum()), len(labels)

    def step(tokens, lengths, labels):
        opt.zero_grad()
        loss = loss_fn(run(tokens, lengths, labels), labels)
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
    model.state = None
    with torch.no_grad():
        hits = [correct(run(t, l, y), y) for t, l, y in test]
        acc = sum(h for h, _ in hits) / sum(n for _, n in hits)
    reset_peak()
    infer = []
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            for tok, l, y in timed:
                correct(run(tok, l, y), y)
            infer.append(time.perf_counter() - t)
    infer_rss = peak_rss_mb()
    if lm:
        fpt = 2.0 * GATES[cell] * CHARLM_HIDDEN * ((EMBED + CHARLM_HIDDEN) + (CHARLM_LAYERS - 1) * 2 * CHARLM_HIDDEN)
    elif s2s:
        fpt = 3 * 2.0 * GATES[cell] * TRANSLATE_HIDDEN * (TRANSLATE_EMBED + TRANSLATE_HIDDEN)
    else:
        fpt = 2.0 * GATES[cell] * HIDDEN * ((vocab - 1 if onehot else EMBED) + HIDDEN)
    rows = []
    for phase, secs, rss, mult, a in [("train", sorted(times)[len(times) // 2], train_rss, 3.0, acc),
                                      ("infer", sorted(infer)[len(infer) // 2], infer_rss, 1.0, float("nan"))]:
        rows.append({
            "framework": "pytorch", "protocol": protocol, "model": cell, "phase": phase, "impl": "eager",
            "batch": BATCH, "seq_len": padded, "seq_per_s": seqs / secs, "tokens_per_s": tokens / secs,
            "peak_rss_mb": rss, "gflops": mult * fpt * seqs * padded / secs / 1e9, "acc": a,
            "threads": torch.get_num_threads(),
        })
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", required=True, help="folder with names.bin / imdb.bin from the Rust bench")
    p.add_argument("--protocols", default="names,imdb")
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--flush-denormals", action="store_true",
                   help="torch.set_flush_denormal(True) before any work (the OpenMP threads, started later, inherit it)")
    a = p.parse_args()
    if a.flush_denormals and not torch.set_flush_denormal(True):
        raise SystemExit("--flush-denormals: this CPU does not support flushing denormals (torch.set_flush_denormal)")
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = []
    for protocol in a.protocols.split(","):
        train, test, vocab, classes = read_batches(f"{a.batches}/{protocol}.bin")
        for cell in a.cells.split(","):
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

//! Translation metrics as sacreBLEU 2.x computes them (tested equal on `tests/fixtures/bleu_reference.json`):
//! corpus BLEU with the `13a` tokenisation (mteval-v13a, WMT's), n-grams up to 4, clipped counts, the brevity
//! penalty and sacreBLEU's default `exp` smoothing; and corpus chrF (character 6-grams, β = 2, whitespace
//! ignored). One reference per segment. Scores are on sacreBLEU's 0–100 scale.

/// The statistics one segment contributes to corpus BLEU.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BleuStats {
    pub sys_len: usize,
    pub ref_len: usize,
    /// Matched (clipped) and total hypothesis n-grams, n = 1..=4.
    pub correct: [usize; 4],
    pub total: [usize; 4],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: BleuStats) {
        self.sys_len += o.sys_len;
        self.ref_len += o.ref_len;
        for n in 0..4 {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

/// mteval-v13a's tokenisation, as sacreBLEU's `Tokenizer13a`.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    // Each rule as Python's re.sub applies it: left to right, a match consumes its characters.
    let digit = |c: char| c.is_ascii_digit();
    let punct = |c: char| matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/');
    let mut s: Vec<char> = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        if punct(c) {
            s.extend([' ', c, ' ']);
        } else {
            s.push(c);
        }
    }
    // Period and comma unless preceded by a digit: ([^0-9])([.,]) → "\1 \2 ".
    let s = pairs(&s, |a, b| !digit(a) && matches!(b, '.' | ','), |a, b| vec![a, ' ', b, ' ']);
    // Period and comma unless followed by a digit: ([.,])([^0-9]) → " \1 \2".
    let s = pairs(&s, |a, b| matches!(a, '.' | ',') && !digit(b), |a, b| vec![' ', a, ' ', b]);
    // Dash after a digit: ([0-9])(-) → "\1 \2 ".
    let s = pairs(&s, |a, b| digit(a) && b == '-', |a, b| vec![a, ' ', b, ' ']);
    s.into_iter().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Replaces every non-overlapping match of a two-character pattern, scanning left to right.
fn pairs(s: &[char], is: impl Fn(char, char) -> bool, by: impl Fn(char, char) -> Vec<char>) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + 16);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && is(s[i], s[i + 1]) {
            out.extend(by(s[i], s[i + 1]));
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn ngrams(tokens: &[&str], n: usize) -> std::collections::HashMap<Vec<String>, usize> {
    let mut m = std::collections::HashMap::new();
    for w in tokens.windows(n) {
        *m.entry(w.iter().map(|s| s.to_string()).collect()).or_insert(0) += 1;
    }
    m
}

/// One segment's BLEU statistics against its reference (both raw text; `lowercase` as sacreBLEU's `-lc`).
pub fn bleu_stats(hyp: &str, reference: &str, lowercase: bool) -> BleuStats {
    let prep = |s: &str| {
        let s = if lowercase { s.to_lowercase() } else { s.to_string() };
        tokenize_13a(s.trim_end())
    };
    let (h, r) = (prep(hyp), prep(reference));
    let (h, r): (Vec<&str>, Vec<&str>) = (h.split_whitespace().collect(), r.split_whitespace().collect());
    let mut st = BleuStats { sys_len: h.len(), ref_len: r.len(), ..Default::default() };
    for n in 1..=4 {
        let rn = ngrams(&r, n);
        for (g, c) in ngrams(&h, n) {
            st.total[n - 1] += c;
            st.correct[n - 1] += c.min(rn.get(&g).copied().unwrap_or(0));
        }
    }
    st
}

/// Corpus BLEU from summed statistics, with sacreBLEU's `exp` smoothing of orders without a match.
pub fn bleu_from(st: &BleuStats) -> f64 {
    if st.correct.iter().all(|&c| c == 0) {
        return 0.0;
    }
    let bp = match (st.sys_len, st.ref_len) {
        (s, r) if s >= r => 1.0,
        (0, _) => 0.0,
        (s, r) => (1.0 - r as f64 / s as f64).exp(),
    };
    let mut precisions = [0.0f64; 4];
    let mut smooth = 1.0;
    for (p, (&c, &t)) in precisions.iter_mut().zip(st.correct.iter().zip(&st.total)) {
        if t == 0 {
            break;
        }
        *p = if c == 0 {
            smooth *= 2.0;
            100.0 / (smooth * t as f64)
        } else {
            100.0 * c as f64 / t as f64
        };
    }
    let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
    bp * (precisions.iter().map(|&p| log(p)).sum::<f64>() / 4.0).exp()
}

/// Corpus BLEU of hypotheses against their references.
pub fn corpus_bleu(hyps: &[String], refs: &[String], lowercase: bool) -> f64 {
    let mut st = BleuStats::default();
    for (h, r) in hyps.iter().zip(refs) {
        st += bleu_stats(h, r, lowercase);
    }
    bleu_from(&st)
}

/// chrF's statistics of one segment: per character order 1..=6, (hypothesis n-grams, reference n-grams,
/// matches).
pub fn chrf_stats(hyp: &str, reference: &str, lowercase: bool) -> [[usize; 3]; 6] {
    let prep = |s: &str| -> Vec<char> {
        let s = if lowercase { s.to_lowercase() } else { s.to_string() };
        s.split_whitespace().flat_map(str::chars).collect()
    };
    let (h, r) = (prep(hyp), prep(reference));
    let mut out = [[0usize; 3]; 6];
    for n in 1..=6 {
        let (hn, rn) = (char_ngrams(&h, n), char_ngrams(&r, n));
        let matches: usize = hn.iter().map(|(g, c)| (*c).min(rn.get(g).copied().unwrap_or(0))).sum();
        let hyp_count: usize = hn.values().sum();
        out[n - 1] = [if rn.is_empty() { 0 } else { hyp_count }, rn.values().sum(), matches];
    }
    out
}

fn char_ngrams(v: &[char], n: usize) -> std::collections::HashMap<&[char], usize> {
    let mut m = std::collections::HashMap::new();
    for w in v.windows(n) {
        *m.entry(w).or_insert(0) += 1;
    }
    m
}

/// Corpus chrF (β = 2) from summed statistics: the F-score of the precision and recall averaged over the orders
/// that have n-grams on both sides.
pub fn chrf_from(stats: &[[usize; 3]; 6]) -> f64 {
    let beta2 = 4.0;
    let (mut prec, mut rec, mut orders) = (0.0, 0.0, 0);
    for &[h, r, m] in stats {
        if h > 0 && r > 0 {
            prec += m as f64 / h as f64;
            rec += m as f64 / r as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, r) = (prec / orders as f64, rec / orders as f64);
    if p + r == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + beta2) * p * r / (beta2 * p + r)
}

/// Corpus chrF of hypotheses against their references.
pub fn corpus_chrf(hyps: &[String], refs: &[String], lowercase: bool) -> f64 {
    let mut total = [[0usize; 3]; 6];
    for (h, r) in hyps.iter().zip(refs) {
        for (t, s) in total.iter_mut().zip(chrf_stats(h, r, lowercase)) {
            for k in 0..3 {
                t[k] += s[k];
            }
        }
    }
    chrf_from(&total)
}

//! What identifies a run besides its seed: its swept values (and the experiment's fixed ones), typed as the YAML
//! config had them, under the shared column names (`model`, `seq_len`, `distance`, …).
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// One value of a run: a number, a boolean or a word (a cell, a mode, a label of a named axis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tag {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// A run's tags by column name.
pub type Tags = BTreeMap<String, Tag>;

impl Tag {
    /// The value of a YAML scalar (a list or mapping becomes its compact YAML text).
    pub fn from_yaml(v: &serde_yaml::Value) -> Tag {
        use serde_yaml::Value;
        match v {
            Value::Number(n) => n.as_i64().map_or_else(|| Tag::Float(n.as_f64().unwrap_or(f64::NAN)), Tag::Int),
            Value::Bool(b) => Tag::Bool(*b),
            Value::String(s) => Tag::Text(s.clone()),
            Value::Null => Tag::Text("null".into()),
            other => Tag::Text(serde_yaml::to_string(other).unwrap_or_default().trim().replace(['\n', ' '], "")),
        }
    }

    /// The value as a number (also a word that spells one: runs written before tags were typed).
    pub fn number(&self) -> Option<f64> {
        match self {
            Tag::Int(i) => Some(*i as f64),
            Tag::Float(f) => Some(*f),
            Tag::Text(s) => s.parse().ok(),
            Tag::Bool(_) => None,
        }
    }

    /// Numbers in numeric order before words in text order.
    pub fn order(&self, other: &Tag) -> Ordering {
        match (self.number(), other.number()) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl From<&str> for Tag {
    fn from(s: &str) -> Tag {
        Tag::Text(s.to_string())
    }
}

impl From<usize> for Tag {
    fn from(n: usize) -> Tag {
        Tag::Int(n as i64)
    }
}

/// As the config wrote it: `10`, `0.001`, `true`, `gru` (the text of CSV cells and run names).
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Tag::Int(i) => write!(f, "{i}"),
            Tag::Float(x) => write!(f, "{}", serde_yaml::Number::from(*x)),
            Tag::Bool(b) => write!(f, "{b}"),
            Tag::Text(s) => f.write_str(s),
        }
    }
}

/// The column (the shared vocabulary: `seq_len`, `distance`, …) and run-name prefix (`L`, `k`, …) of a swept
/// config key; a name that is not a config key (a labelled axis such as `variant`) is its own column.
pub fn column(key: &str) -> (String, String) {
    let (col, prefix) = match key {
        "model.cell" => ("model", ""),
        "train.seed" => ("seed", "s"),
        "data.length" => ("seq_len", "L"),
        "data.distance" => ("distance", "k"),
        "data.mode" => ("mode", ""),
        "data.bptt" => ("bptt", "bptt"),
        "model.attention" => ("attention", ""),
        k if !k.contains('.') => (k, ""),
        k => {
            let last = k.rsplit('.').next().unwrap_or(k);
            (last, last)
        }
    };
    (col.to_string(), prefix.to_string())
}

/// Where a column goes, in run names and in summary columns: task, mode, model, variant, lengths, then the
/// others (alphabetically), the seed last.
pub fn rank(col: &str) -> usize {
    ["task", "mode", "model", "variant", "seq_len", "distance", "bptt"].iter().position(|c| *c == col).unwrap_or(7)
        + if col == "seed" { 10 } else { 0 }
}

/// Columns sorted by [`rank`] (ties alphabetically), without repeats.
pub fn ordered<'a>(cols: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = cols.into_iter().collect();
    v.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_their_yaml_types_and_text() {
        let v: serde_yaml::Value = serde_yaml::from_str("[10, 0.001, true, gru, '10']").unwrap();
        let tags: Vec<Tag> = v.as_sequence().unwrap().iter().map(Tag::from_yaml).collect();
        assert_eq!(tags[..4], [Tag::Int(10), Tag::Float(0.001), Tag::Bool(true), Tag::from("gru")]);
        assert_eq!(tags.iter().map(Tag::to_string).collect::<Vec<_>>(), ["10", "0.001", "true", "gru", "10"]);
        // A number written as text (runs made before typed tags) still orders as a number.
        assert_eq!(Tag::from("10").order(&Tag::Int(9)), Ordering::Greater);
        assert_eq!(Tag::Int(2).order(&Tag::Int(10)), Ordering::Less);
        let yaml = serde_yaml::to_string(&tags).unwrap();
        assert_eq!(serde_yaml::from_str::<Vec<Tag>>(&yaml).unwrap(), tags);
        assert_eq!(
            ordered(["seed", "hidden", "seq_len", "model", "clip"]),
            ["model", "seq_len", "clip", "hidden", "seed"]
        );
    }
}

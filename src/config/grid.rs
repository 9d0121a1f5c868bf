//! The `sweep` section ([`Grid`]: axes of values, one run per combination) and `--set` overrides on the YAML
//! tree.
use anyhow::{bail, Context, Result};
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::{Mapping, Value};

/// One swept key and its values. A config key (`model.cell`) takes plain values that replace it; a name that is
/// not a config key (`variant`) maps labels to patches (`bi: {model.bidirectional: true}`), each a mapping of
/// config keys (dotted, or nested) to values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<AxisValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AxisValue {
    /// The key's value.
    Plain(Value),
    /// A label and the config keys it sets.
    Named(String, Mapping),
}

impl Axis {
    /// Whether the values are labelled patches.
    pub fn named(&self) -> bool {
        matches!(self.values.first(), Some(AxisValue::Named(..)))
    }
}

/// The `sweep` section: the runs to make. A mapping of axes is a grid (one run per combination, the first axis
/// outermost); a list of such mappings is the union of their grids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    pub blocks: Vec<Vec<Axis>>,
}

impl Grid {
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(Vec::is_empty)
    }

    /// Whether some block sweeps `key`.
    pub fn sweeps(&self, key: &str) -> bool {
        self.blocks.iter().flatten().any(|a| a.key == key)
    }

    /// Parses the YAML form; errors name the axis.
    pub fn from_value(v: &Value) -> Result<Grid> {
        let block = |m: &Mapping| -> Result<Vec<Axis>> {
            m.iter()
                .map(|(k, v)| {
                    let key = k.as_str().with_context(|| format!("sweep: key {k:?} is not a string"))?.to_string();
                    let values = match v {
                        Value::Sequence(s) => s.iter().cloned().map(AxisValue::Plain).collect::<Vec<_>>(),
                        Value::Mapping(named) => named
                            .iter()
                            .map(|(label, patch)| {
                                let label = match label {
                                    Value::String(s) => s.clone(),
                                    Value::Number(n) => n.to_string(),
                                    Value::Bool(b) => b.to_string(),
                                    other => bail!("sweep.{key}: label {other:?} is not a string"),
                                };
                                let patch = match patch {
                                    Value::Mapping(p) => p.clone(),
                                    Value::Null => Mapping::new(),
                                    other => bail!(
                                        "sweep.{key}.{label}: expected a mapping of config keys to values, got {}",
                                        kind_name(other)
                                    ),
                                };
                                Ok(AxisValue::Named(label, patch))
                            })
                            .collect::<Result<_>>()?,
                        other => bail!(
                            "sweep.{key}: expected a list of values (`[a, b]`) or a mapping of labels to config keys, \
                             got a {}",
                            kind_name(other)
                        ),
                    };
                    if values.is_empty() {
                        bail!("sweep.{key}: must list at least one value");
                    }
                    Ok(Axis { key, values })
                })
                .collect()
        };
        let blocks = match v {
            Value::Null => vec![],
            Value::Mapping(m) => vec![block(m)?],
            Value::Sequence(s) => s
                .iter()
                .enumerate()
                .map(|(i, b)| match b {
                    Value::Mapping(m) => block(m),
                    other => bail!("sweep[{i}]: expected a mapping of axes, got a {}", kind_name(other)),
                })
                .collect::<Result<_>>()?,
            other => bail!("sweep: expected a mapping of axes (or a list of them), got a {}", kind_name(other)),
        };
        Ok(Grid { blocks })
    }

    fn to_value(&self) -> Value {
        let block = |axes: &Vec<Axis>| -> Value {
            let mut m = Mapping::new();
            for a in axes {
                let v = if a.named() {
                    let mut named = Mapping::new();
                    for v in &a.values {
                        if let AxisValue::Named(l, p) = v {
                            named.insert(Value::String(l.clone()), Value::Mapping(p.clone()));
                        }
                    }
                    Value::Mapping(named)
                } else {
                    Value::Sequence(
                        a.values
                            .iter()
                            .filter_map(|v| match v {
                                AxisValue::Plain(x) => Some(x.clone()),
                                AxisValue::Named(..) => None,
                            })
                            .collect(),
                    )
                };
                m.insert(Value::String(a.key.clone()), v);
            }
            Value::Mapping(m)
        };
        match &self.blocks[..] {
            [] => Value::Mapping(Mapping::new()),
            [one] => block(one),
            many => Value::Sequence(many.iter().map(block).collect()),
        }
    }
}

impl Serialize for Grid {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Grid {
    fn deserialize<De: Deserializer<'de>>(d: De) -> std::result::Result<Self, De::Error> {
        let v = Value::deserialize(d)?;
        Grid::from_value(&v).map_err(|e| de::Error::custom(format!("{e:#}")))
    }
}

/// Sets `a.b.c=value` in a YAML tree, creating mappings on the way. Under `sweep`, the rest of the key is one
/// axis (`sweep.model.cell=[gru]` replaces the axis `model.cell`, in every grid of a list that has it).
pub fn apply_override(root: &mut Value, spec: &str) -> Result<()> {
    let Some((key, raw)) = spec.split_once('=') else {
        bail!("expected KEY=VALUE, e.g. train.epochs=3");
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("empty key in `{spec}`: expected dotted keys like train.epochs");
    }
    let value: Value = serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    if let Some(axis) = key.strip_prefix("sweep.") {
        let Value::Mapping(top) = root else { bail!("the config is not a mapping") };
        let axis_key = Value::String(axis.to_string());
        match top.entry(Value::String("sweep".into())).or_insert(Value::Mapping(Mapping::new())) {
            Value::Mapping(m) => {
                m.insert(axis_key, value);
            }
            Value::Sequence(blocks) => {
                let mut hit = false;
                for b in blocks.iter_mut() {
                    if let Value::Mapping(m) = b {
                        if let Some(slot) = m.get_mut(&axis_key) {
                            *slot = value.clone();
                            hit = true;
                        }
                    }
                }
                if !hit {
                    bail!("`{key}`: no grid of the sweep list has the axis `{axis}`");
                }
            }
            Value::Null => {
                let mut m = Mapping::new();
                m.insert(axis_key, value);
                top.insert(Value::String("sweep".into()), Value::Mapping(m));
            }
            other => bail!("`sweep` is a {}, not a mapping of axes", kind_name(other)),
        }
        return Ok(());
    }
    set_path(root, key, value)
}

/// Sets the dotted `key` to `value` in `root`, creating mappings on the way.
pub fn set_path(root: &mut Value, key: &str, value: Value) -> Result<()> {
    let mut node = root;
    for part in key.split('.') {
        let map = match node {
            Value::Mapping(m) => m,
            Value::Null => {
                *node = Value::Mapping(Mapping::new());
                let Value::Mapping(m) = node else { unreachable!() };
                m
            }
            other => bail!("`{key}`: `{part}` is inside a {}, not a section", kind_name(other)),
        };
        node = map.entry(Value::String(part.to_string())).or_insert(Value::Null);
    }
    *node = value;
    Ok(())
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}

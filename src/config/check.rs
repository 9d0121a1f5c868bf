//! Validation: every config struct adds one error per bad value, each naming the key, the value and what is
//! allowed.
use std::fmt;

/// Collects validation errors as `key = value: what is allowed`.
#[derive(Default)]
pub struct Checker {
    errors: Vec<String>,
}

impl Checker {
    pub fn check(&mut self, ok: bool, key: &str, value: impl fmt::Debug, allowed: &str) {
        if !ok {
            self.errors.push(format!("{key} = {value:?}: {allowed}"));
        }
    }
    pub fn positive<T: PartialOrd + Default + fmt::Debug>(&mut self, key: &str, v: T) {
        let ok = v > T::default();
        self.check(ok, key, v, "must be > 0");
    }
    pub fn fraction(&mut self, key: &str, v: f64) {
        self.check((0.0..1.0).contains(&v), key, v, "must be in [0, 1)");
    }
    pub fn nonempty<T: fmt::Debug>(&mut self, key: &str, v: &[T]) {
        self.check(!v.is_empty(), key, v, "must list at least one value");
    }
    /// Validates a section that sits at `prefix` in this config although it reports its keys under `section`
    /// (e.g. a data section checked as `data.length`, nested at `data.synthetic`).
    pub fn nested(&mut self, section: &str, prefix: &str, v: &dyn Validate) {
        let mut sub = Checker::default();
        v.validate(&mut sub);
        self.errors.extend(sub.errors.into_iter().map(|e| match e.strip_prefix(section) {
            Some(rest) => format!("{prefix}{rest}"),
            None => format!("{prefix}.{e}"),
        }));
    }

    /// The errors so far, one per line.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
}

/// Implemented by every config struct: adds one error per bad value.
pub trait Validate {
    fn validate(&self, c: &mut Checker);
}

impl Validate for () {
    fn validate(&self, _: &mut Checker) {}
}

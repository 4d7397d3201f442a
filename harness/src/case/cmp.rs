//! The comparisons counts and kernel ranges are written with: `<`, `<=`,
//! `>`, `>=`, `=`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    /// Splits a leading comparison off `s`: `">=6.1"` → `(Some(Ge), "6.1")`.
    pub fn split(s: &str) -> (Option<Cmp>, &str) {
        for (sym, c) in [(">=", Cmp::Ge), ("<=", Cmp::Le), (">", Cmp::Gt), ("<", Cmp::Lt), ("=", Cmp::Eq)] {
            if let Some(rest) = s.strip_prefix(sym) {
                return (Some(c), rest.trim());
            }
        }
        (None, s)
    }

    pub fn holds<T: PartialOrd>(self, v: T, bound: T) -> bool {
        match self {
            Cmp::Lt => v < bound,
            Cmp::Le => v <= bound,
            Cmp::Gt => v > bound,
            Cmp::Ge => v >= bound,
            Cmp::Eq => v == bound,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "=",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_symbol_first() {
        assert_eq!(Cmp::split(">=6.1"), (Some(Cmp::Ge), "6.1"));
        assert_eq!(Cmp::split("> 0"), (Some(Cmp::Gt), "0"));
        assert_eq!(Cmp::split("3"), (None, "3"));
        assert!(Cmp::Le.holds(2, 2) && !Cmp::Lt.holds(2, 2));
    }
}

//! Kernel releases and the ranges expectations are gated on.

use std::fmt;

use anyhow::{anyhow, bail, Result};

use crate::case::cmp::Cmp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Version {
    const MAX: Version = Version(u32::MAX, u32::MAX, u32::MAX);

    /// The release right after this one, in the order ranges compare.
    fn next(self) -> Option<Version> {
        match self {
            Version(a, b, c) if c < u32::MAX => Some(Version(a, b, c + 1)),
            Version(a, b, _) if b < u32::MAX => Some(Version(a, b + 1, 0)),
            Version(a, _, _) if a < u32::MAX => Some(Version(a + 1, 0, 0)),
            _ => None,
        }
    }

    /// The release right before this one.
    fn prev(self) -> Option<Version> {
        match self {
            Version(a, b, c) if c > 0 => Some(Version(a, b, c - 1)),
            Version(a, b, _) if b > 0 => Some(Version(a, b - 1, u32::MAX)),
            Version(a, _, _) if a > 0 => Some(Version(a - 1, u32::MAX, u32::MAX)),
            _ => None,
        }
    }

    /// Parses a release such as `6.18.44-fc-v657` or `5.10.0-32-amd64`.
    pub fn parse(release: &str) -> Result<Version> {
        let core: String = release.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let mut it = core.split('.').filter(|s| !s.is_empty()).map(|s| s.parse::<u32>());
        let major = it.next().ok_or_else(|| anyhow!("no version in {release:?}"))??;
        let minor = it.next().transpose()?.unwrap_or(0);
        let patch = it.next().transpose()?.unwrap_or(0);
        Ok(Version(major, minor, patch))
    }

    /// The running kernel's release string and version.
    pub fn running() -> Result<(String, Version)> {
        let rel = nix::sys::utsname::uname()?.release().to_string_lossy().into_owned();
        let v = Version::parse(&rel)?;
        Ok((rel, v))
    }
}

/// A conjunction of comparisons: `>=4.10`, `<6.1`, `>=4.3, <4.10`.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    text: String,
    bounds: Vec<(Cmp, Version)>,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range> {
        let mut bounds = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (Some(op), rest) = Cmp::split(part) else {
                bail!("kernel range part {part:?} must start with <, <=, >, >= or =");
            };
            let rest = rest.trim();
            if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
                bail!("kernel range part {part:?}: {rest:?} is not a version like 6.1");
            }
            bounds.push((op, Version::parse(rest)?));
        }
        if lowest(&bounds).is_none() {
            bail!("{text:?} holds for no kernel: write the lower bound below the upper one, e.g. \">=4.3, <4.10\"");
        }
        Ok(Range { text: text.to_string(), bounds })
    }

    /// The lowest release both ranges hold for, if any: two variants of one
    /// phase must not share a kernel, or neither could be chosen there.
    pub fn overlap(&self, other: &Range) -> Option<Version> {
        lowest(&[self.bounds.as_slice(), other.bounds.as_slice()].concat())
    }

    pub fn contains(&self, v: Version) -> bool {
        self.bounds.iter().all(|(op, b)| op.holds(v, *b))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The lowest release a conjunction of bounds holds for: every bound narrows
/// one interval of releases, empty once its ends cross.
fn lowest(bounds: &[(Cmp, Version)]) -> Option<Version> {
    let (mut lo, mut hi) = (Version(0, 0, 0), Version::MAX);
    for &(op, v) in bounds {
        match op {
            Cmp::Ge => lo = lo.max(v),
            Cmp::Gt => lo = lo.max(v.next()?),
            Cmp::Le => hi = hi.min(v),
            Cmp::Lt => hi = hi.min(v.prev()?),
            Cmp::Eq => (lo, hi) = (lo.max(v), hi.min(v)),
        }
    }
    (lo <= hi).then_some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse() {
        assert_eq!(Version::parse("6.18.44-fc-v657").unwrap(), Version(6, 18, 44));
        assert_eq!(Version::parse("5.10.0-32-amd64").unwrap(), Version(5, 10, 0));
        assert_eq!(Version::parse("6.1").unwrap(), Version(6, 1, 0));
        assert!(Version::parse("linux").is_err());
    }

    #[test]
    fn ranges_bound_both_ways() {
        let r = Range::parse(">=4.3, <4.10").unwrap();
        assert!(r.contains(Version(4, 9, 300)));
        assert!(!r.contains(Version(4, 10, 0)));
        assert!(!r.contains(Version(4, 2, 8)));
        let r = Range::parse("<6.1").unwrap();
        assert!(r.contains(Version(5, 10, 0)));
        assert!(!r.contains(Version(6, 1, 0)));
        assert!(Range::parse("6.1").is_err());
        assert!(Range::parse(">=six").is_err());
    }

    #[test]
    fn empty_ranges_are_refused_and_overlaps_found() {
        assert!(Range::parse(">=6.1, <4.10").unwrap_err().to_string().contains("holds for no kernel"));
        assert!(Range::parse(">6.1, <6.1.1").is_err());
        assert!(Range::parse("=5.10, >=5.10").is_ok());
        assert!(Range::parse("<0.0").is_err());
        let (old, new) = (Range::parse("<6.1").unwrap(), Range::parse(">=6.1").unwrap());
        assert_eq!(old.overlap(&new), None);
        assert_eq!(Range::parse(">=6.0").unwrap().overlap(&old), Some(Version(6, 0, 0)));
        assert_eq!(Range::parse(">4.3, <=6.1").unwrap().overlap(&new), Some(Version(6, 1, 0)));
    }
}

//! `netrepro bench`: build + one ping + teardown of a fixture, by the
//! harness and by the shell script beside it (`ci/bench/docker-bridge.sh`),
//! alternated in the same run; medians, the ratio, and the harness's peak
//! memory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::case::plan::load_fixture;
use crate::run::topology::Topology;

pub struct BenchResult {
    pub harness_ms: Vec<f64>,
    pub shell_ms: Vec<f64>,
    pub peak_rss_kib: u64,
}

impl BenchResult {
    /// The figures as `netrepro bench` prints them.
    pub fn summary(&self) -> String {
        let (h, s) = (median(&self.harness_ms), median(&self.shell_ms));
        format!(
            "docker-bridge build + 1 ping + teardown, {} rounds each, alternated:\n  \
             harness (netlink, fd-held namespaces): median {h:.2} ms\n  \
             shell   (ip netns + iproute2 + iptables): median {s:.2} ms\n  \
             ratio harness/shell: {:.3}\n  \
             harness peak RSS: {} KiB\n",
            self.harness_ms.len(),
            h / s,
            self.peak_rss_kib
        )
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 0 {
        (s[m - 1] + s[m]) / 2.0
    } else {
        s[m]
    }
}

/// The harness's own way: fixture over netlink, one echo, drop.
fn harness_once(fixture: &crate::case::spec::FixtureFile, i: usize) -> Result<f64> {
    let t = Instant::now();
    let topo = Topology::build(fixture, &format!("bench{i}"))?;
    let ping = crate::run::probe::ping(
        topo.ns("container")?,
        "10.2.19.80".parse()?,
        1,
        Duration::from_millis(1),
        Duration::from_millis(1000),
    )?;
    if ping.replies != 1 {
        bail!("bench ping across the fixture got no reply: {ping:?}");
    }
    drop(topo);
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn shell_once(script: &Path, i: usize) -> Result<f64> {
    let t = Instant::now();
    let out = Command::new("bash").arg(script).arg(format!("{}-{i}", std::process::id())).output()?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// Peak resident memory of this process so far (VmHWM).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn run(fixtures: &Path, script: &Path, n: usize) -> Result<BenchResult> {
    let fixture = load_fixture(&fixtures.join("docker-bridge.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The shell side's `ip netns add` makes /run/netns (a bind mount of
    // itself) and `ip netns del` leaves it: put the host back as found,
    // outside the timed rounds.
    let run_netns = Path::new("/run/netns");
    let had_run_netns = run_netns.exists();
    let rounds = || -> Result<BenchResult> {
        // One untimed round each: module loads, page cache.
        harness_once(&fixture, 0).context("warm-up")?;
        shell_once(script, 0).context("warm-up")?;
        let mut r = BenchResult { harness_ms: vec![], shell_ms: vec![], peak_rss_kib: 0 };
        for i in 1..=n {
            r.harness_ms.push(harness_once(&fixture, i)?);
            r.shell_ms.push(shell_once(script, i)?);
        }
        r.peak_rss_kib = peak_rss_kib();
        Ok(r)
    };
    let r = rounds();
    if !had_run_netns && run_netns.exists() {
        let _ = nix::mount::umount2(run_netns, nix::mount::MntFlags::MNT_DETACH);
        std::fs::remove_dir(run_netns)
            .with_context(|| format!("removing {} (made by ip netns add)", run_netns.display()))?;
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(super::median(&[]).is_nan());
    }
}

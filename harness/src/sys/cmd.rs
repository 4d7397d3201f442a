//! Subprocesses, only where the incident itself is a command line. Every one
//! has a deadline and is reaped; see [`crate::sys::netns::Netns::command`] for how
//! it enters its namespace and dies with its parent.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Long enough for a first iptables in a TCG guest, which loads a chain of
/// modules over 9p (seen past 20 s on 5.10 with the host busy); a hung
/// command is still caught.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion within `deadline`; a command still running then
/// is killed, reaped, and reported.
pub fn run(cmd: Command, deadline: Duration) -> Result<Output> {
    run_input(cmd, None, deadline)
}

/// [`run`], with `input` written to the child's stdin (then closed).
pub fn run_input(mut cmd: Command, input: Option<&[u8]>, deadline: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {shown}"))?;
    let t_in = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut w)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                use std::io::Write;
                let _ = w.write_all(&bytes);
            }))
        }
        _ => None,
    };
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    // Woken by the kernel at the child's exit (its pidfd turns readable),
    // not by polling: a 1 ms poll added ~0.5 ms to every iptables line of
    // a build. Pinned before any wait, so the pid cannot be another's yet.
    let exited = match crate::sys::pidfd::Pidfd::open(child.id() as i32) {
        Ok(p) => p.wait_exit(deadline),
        Err(_) => {
            // No pidfd (before 5.3, or refused: seccomp, no fd left): poll.
            // An error asking counts as "still running": killed and reaped below.
            let end = Instant::now() + deadline;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break true,
                    Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(1)),
                    _ => break false,
                }
            }
        }
    };
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{shown} still running after {deadline:?}: killed");
    }
    let status = child.wait()?;
    if let Some(t) = t_in {
        t.join().map_err(|_| anyhow!("stdin writer panicked"))?;
    }
    let stdout = t_out.join().map_err(|_| anyhow!("stdout reader panicked"))?;
    let stderr = t_err.join().map_err(|_| anyhow!("stderr reader panicked"))?;
    Ok(Output { status: status.code().unwrap_or(-1), stdout, stderr })
}

/// Like [`run`], and a non-zero exit is an error carrying stderr.
pub fn run_ok(cmd: Command, deadline: Duration) -> Result<Output> {
    run_ok_input(cmd, None, deadline)
}

/// [`run_ok`] with `input` on stdin.
pub fn run_ok_input(cmd: Command, input: Option<&[u8]>, deadline: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = run_input(cmd, input, deadline)?;
    if out.status != 0 {
        bail!("{shown} exited {}: {}", out.status, out.stderr.trim());
    }
    Ok(out)
}

/// Where `tool` is on PATH (and the sbin directories root has), if anywhere.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file());
    found
}

/// The Debian package that provides a tool, for "how to get it" messages;
/// `None` for a tool no known package provides (never a placeholder).
pub fn package_for(tool: &str) -> Option<&'static str> {
    PACKAGES.iter().find(|(tools, _)| tools.contains(&tool)).map(|(_, p)| *p)
}

/// Tools → the Debian package with them (Debian 12).
const PACKAGES: &[(&[&str], &str)] = &[
    (
        &[
            "iptables",
            "iptables-save",
            "iptables-restore",
            "ip6tables",
            "ip6tables-save",
            "ip6tables-restore",
            "iptables-legacy",
            "iptables-legacy-save",
            "iptables-legacy-restore",
            "iptables-nft",
            "iptables-nft-save",
            "iptables-nft-restore",
            "xtables-monitor",
        ],
        "iptables",
    ),
    (&["nft"], "nftables"),
    (&["arptables"], "arptables"),
    (&["ebtables"], "ebtables"),
    (&["ipset"], "ipset"),
    (&["ipvsadm"], "ipvsadm"),
    (&["conntrack"], "conntrack"),
    (&["conntrackd"], "conntrackd"),
    (&["ip", "tc", "bridge", "ss", "nstat", "lnstat", "rtmon", "devlink", "rdma", "tipc"], "iproute2"),
    (&["brctl"], "bridge-utils"),
    (&["ifconfig", "route", "arp", "netstat", "ipmaddr", "iptunnel"], "net-tools"),
    (&["ethtool"], "ethtool"),
    (&["tcpdump"], "tcpdump"),
    (&["tshark"], "tshark"),
    (&["ping", "ping4", "ping6"], "iputils-ping"),
    (&["tracepath"], "iputils-tracepath"),
    (&["arping"], "iputils-arping"),
    (&["traceroute"], "traceroute"),
    (&["mtr"], "mtr-tiny"),
    (&["nc", "netcat"], "netcat-openbsd"),
    (&["ncat"], "ncat"),
    (&["socat"], "socat"),
    (&["curl"], "curl"),
    (&["wget"], "wget"),
    (&["dig", "nslookup", "host"], "bind9-dnsutils"),
    (&["iperf3"], "iperf3"),
    (&["iperf"], "iperf"),
    (&["bpftool"], "bpftool"),
    (&["sysctl"], "procps"),
    (&["modprobe", "lsmod", "insmod", "rmmod"], "kmod"),
    (&["nsenter", "unshare"], "util-linux"),
    (&["dhclient"], "isc-dhcp-client"),
    (&["wg"], "wireguard-tools"),
    (&["strace"], "strace"),
    (&["jq"], "jq"),
    (&["python3"], "python3"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_package_or_none() {
        assert_eq!(package_for("ipvsadm"), Some("ipvsadm"));
        assert_eq!(package_for("tc"), Some("iproute2"));
        assert_eq!(package_for("iptables-legacy"), Some("iptables"));
        assert_eq!(package_for("dig"), Some("bind9-dnsutils"));
        assert_eq!(package_for("no-such-tool"), None);
        let mut seen = std::collections::BTreeSet::new();
        for (tools, _) in PACKAGES {
            for t in *tools {
                assert!(seen.insert(*t), "{t} listed twice");
            }
        }
    }
}

//! No race after build: `Topology::build` returns only when a probe can use
//! what it built (issue 17). docker-bridge built and pinged at once, 200
//! times, one echo each: 200 replies. Before, a ping right after build got
//! no reply in about one round of twenty (the bridge still without carrier,
//! or a queue still on the `noop` qdisc).

mod common;

use common::Need;
use std::time::{Duration, Instant};

use netrepro::case::plan::load_fixture;
use netrepro::run::probe::ping;
use netrepro::run::topology::Topology;

const ROUNDS: usize = 200;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(two_hundred_builds_each_pinged_at_once_all_answer).needs(Need::Namespaces)])
}

fn two_hundred_builds_each_pinged_at_once_all_answer() {
    let fixture = load_fixture(&netrepro::app::suite::fixtures_dir().join("docker-bridge.toml")).unwrap();
    let to = "10.2.19.80".parse().unwrap();
    let started = Instant::now();
    let mut lost = Vec::new();
    for i in 0..ROUNDS {
        let topo = Topology::build(&fixture, &format!("race{i}")).unwrap();
        // One echo, no pause: the first thing a probe would do.
        let p = ping(topo.ns("container").unwrap(), to, 1, Duration::from_millis(1), Duration::from_secs(1)).unwrap();
        if p.replies != 1 {
            lost.push((i, p));
        }
    }
    eprintln!("build_race: {ROUNDS} rounds in {:.1} s", started.elapsed().as_secs_f64());
    assert!(lost.is_empty(), "{} of {ROUNDS} pings right after build got no reply: {lost:?}", lost.len());
}

//! netrepro: Linux container-networking incidents as tests on a real kernel.
//!
//! Data flows one way, and the folders are its layers, lowest first. A module
//! imports only from its own layer or the layers above it in this list
//! (`harness/tests/layers.rs` checks it, and that no two modules import each
//! other, directly or around a circle):
//!
//! | layer | job | touches the kernel |
//! | --- | --- | --- |
//! | [`wire`] | frames: parsing, the one ICMP/frame vocabulary, matchers, checksums | no |
//! | [`case`] | case and fixture files → the typed [`case::plan::Plan`]; kernel ranges | no |
//! | [`sys`] | namespaces (every `setns` is in [`sys::netns`] or a step's init in [`sys::contain`]), rtnetlink, tc, sysctl, counters, capture, drops, firewall, contained `sh` steps, pidfds, stop signals | yes |
//! | [`safety`] | the host guard, the guardian of global settings, directories only the caller can write | yes |
//! | [`evidence`] | the typed record a run leaves (`evidence.json`), a case's result, where and how artifacts are written | no |
//! | [`verdict`] | expectations vs observations, why-lines: pure | no |
//! | [`run`] | topology → phases (steps, captures, probes) → evidence | yes |
//! | [`render`] | `report.html` and the kernel matrix, from evidence alone; TAP 13 and JUnit | no |
//! | [`app`] | the suite, preflight, the case files, a run and its outputs, kept topologies, the soak, the benchmark | yes |
//!
//! `main.rs` (the CLI) and `cases/run.rs` (the test target) sit on top.
//! ARCHITECTURE.md maps every file to its job.

pub mod app;
pub mod case;
pub mod evidence;
pub mod render;
pub mod run;
pub mod safety;
pub mod sys;
pub mod verdict;
pub mod wire;

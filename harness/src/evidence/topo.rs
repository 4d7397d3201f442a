//! The topology as drawn, kept in the evidence so a report needs nothing
//! else: the fixture's (per case) and the links as they were at each probe
//! (per probe: kind, MAC, state, addresses, master, after the phase's steps).

use serde::{Deserialize, Serialize};

use crate::case::spec::FixtureFile;

/// The fixture as drawn: kept in the evidence so a report needs nothing else.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TopoView {
    pub namespaces: Vec<NsView>,
    /// veth pairs as `ns/dev` labels.
    pub veths: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NsView {
    pub name: String,
    pub ifaces: Vec<IfView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct IfView {
    pub name: String,
    pub kind: String,
    pub addresses: Vec<String>,
    pub master: Option<String>,
    /// The MAC address, read from the kernel (per-probe views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Administratively up (per-probe views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
}

impl TopoView {
    pub fn of(f: &FixtureFile) -> TopoView {
        let mut namespaces: Vec<NsView> =
            f.namespaces.iter().map(|n| NsView { name: n.name.get_ref().clone(), ifaces: vec![] }).collect();
        let mut push = |ns: &str, i: IfView| {
            if let Some(n) = namespaces.iter_mut().find(|n| n.name == ns) {
                n.ifaces.push(i);
            }
        };
        for b in &f.bridges {
            let addresses = b.addresses.iter().map(|a| a.to_string()).collect();
            push(
                b.ns.get_ref(),
                IfView { name: b.name.clone(), kind: "bridge".into(), addresses, ..IfView::default() },
            );
        }
        let mut veths = Vec::new();
        for v in &f.veths {
            for e in [&v.a, &v.b] {
                let addresses = e.addresses.iter().map(|a| a.to_string()).collect();
                let master = e.master.as_ref().map(|m| m.get_ref().clone());
                push(
                    e.ns.get_ref(),
                    IfView { name: e.name.clone(), kind: "veth".into(), addresses, master, ..IfView::default() },
                );
            }
            veths.push((format!("{}/{}", v.a.ns.get_ref(), v.a.name), format!("{}/{}", v.b.ns.get_ref(), v.b.name)));
        }
        for l in &f.links {
            let l = l.get_ref();
            let addresses = l.addresses.iter().map(|a| a.to_string()).collect();
            let view = IfView {
                name: l.name.clone(),
                kind: l.kind.word().into(),
                addresses,
                master: l.master.clone(),
                ..IfView::default()
            };
            push(l.home(), view);
            if let Some(p) = &l.peer {
                let pns = l.peer_ns.clone().unwrap_or(l.ns.clone());
                push(&pns, IfView { name: p.clone(), kind: "veth".into(), ..IfView::default() });
                veths.push((format!("{}/{}", l.ns, l.name), format!("{pns}/{p}")));
            }
        }
        TopoView { namespaces, veths }
    }
}

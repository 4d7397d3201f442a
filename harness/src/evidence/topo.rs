//! The fixture as drawn, kept in the evidence so a report needs nothing else.

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
            push(b.ns.get_ref(), IfView { name: b.name.clone(), kind: "bridge".into(), addresses, master: None });
        }
        let mut veths = Vec::new();
        for v in &f.veths {
            for e in [&v.a, &v.b] {
                let addresses = e.addresses.iter().map(|a| a.to_string()).collect();
                let master = e.master.as_ref().map(|m| m.get_ref().clone());
                push(e.ns.get_ref(), IfView { name: e.name.clone(), kind: "veth".into(), addresses, master });
            }
            veths.push((format!("{}/{}", v.a.ns.get_ref(), v.a.name), format!("{}/{}", v.b.ns.get_ref(), v.b.name)));
        }
        TopoView { namespaces, veths }
    }
}

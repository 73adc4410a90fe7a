//! The JSON renderers: the intercept plan (`links --json`) and the whole plan
//! (`plan --format json`), whose `links` array is the same.

use serde::Serialize;

use super::{Endpoint, Link, Plan, qm};

/// One end as `links --json` prints it.
#[derive(Debug, Serialize)]
struct EndView<'a> {
    vm: u32,
    eth: u32,
    mac: &'a str,
    local: String,
    remote: String,
}

/// One link as `links --json` prints it.
#[derive(Debug, Serialize)]
struct LinkView<'a> {
    name: &'a str,
    host_mtu: Option<u32>,
    a: EndView<'a>,
    b: EndView<'a>,
}

fn end_view(e: &Endpoint) -> EndView<'_> {
    EndView {
        vm: e.vm,
        eth: e.eth,
        mac: &e.mac,
        local: e.local.to_string(),
        remote: e.remote.to_string(),
    }
}

fn link_view(link: &Link) -> LinkView<'_> {
    LinkView {
        name: &link.name,
        host_mtu: link.host_mtu,
        a: end_view(&link.a),
        b: end_view(&link.b),
    }
}

/// `{"links":[…]}`, one line.
pub fn links(links: &[Link]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        links: Vec<LinkView<'a>>,
    }
    serde_json::to_string(&Doc {
        links: links.iter().map(link_view).collect(),
    })
    .expect("serializing plain data")
}

#[derive(Debug, Serialize)]
struct PortView {
    port: u16,
    vm: u32,
    eth: u32,
    explicit: bool,
}

#[derive(Debug, Serialize)]
struct NicView<'a> {
    net: u64,
    eth: u32,
    mac: &'a str,
    slot: Option<String>,
    reused: bool,
    link: &'a str,
    side: &'static str,
    local: String,
    remote: String,
    netdev: String,
    device: String,
}

#[derive(Debug, Serialize)]
struct VmView<'a> {
    vm: u32,
    start_index: u64,
    nics: Vec<NicView<'a>>,
    qm_args: String,
}

#[derive(Debug, Serialize)]
struct PlanView<'a> {
    version: u32,
    model: &'a str,
    host_mtu: i64,
    rx_queue_size: i64,
    tx_queue_size: i64,
    auto_pci_addr: bool,
    pci_alloc_strategy: &'static str,
    port_scheme: &'static str,
    port_formula: String,
    ports: Vec<PortView>,
    vms: Vec<VmView<'a>>,
    links: Vec<LinkView<'a>>,
    /// The relays of the links carried over TCP (absent when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relays: Vec<RelayView>,
    warnings: &'a [String],
}

/// One relay of `plan --format relays`, as JSON.
#[derive(Debug, Serialize)]
struct RelayView {
    link: String,
    host: String,
    listens: bool,
    /// The `linkscope relay` endpoints.
    endpoints: [String; 2],
}

/// The whole plan, pretty-printed.
pub fn plan(plan: &Plan) -> String {
    let vms = plan
        .vms
        .iter()
        .map(|(vm, v)| {
            let nics: Vec<NicView> = v
                .nics
                .iter()
                .map(|nic| NicView {
                    net: nic.net,
                    eth: nic.eth,
                    mac: &nic.mac,
                    slot: nic.slot.map(|s| format!("0x{s:x}")),
                    reused: nic.reused,
                    link: &plan.links[nic.link].name,
                    side: nic.side.name(),
                    local: nic.local.to_string(),
                    remote: nic.remote.to_string(),
                    netdev: qm::netdev(nic),
                    device: qm::device(plan, nic, true),
                })
                .collect();
            let qm_args = nics
                .iter()
                .flat_map(|n| [n.netdev.as_str(), n.device.as_str()])
                .collect::<Vec<_>>()
                .join(" ");
            VmView {
                vm: *vm,
                start_index: v.start_index,
                nics,
                qm_args,
            }
        })
        .collect();
    let view = PlanView {
        version: 1,
        model: &plan.model,
        host_mtu: plan.host_mtu,
        rx_queue_size: plan.rx_queue_size,
        tx_queue_size: plan.tx_queue_size,
        auto_pci_addr: plan.auto_pci_addr,
        pci_alloc_strategy: plan.pci_alloc_strategy.name(),
        port_scheme: plan.port_scheme.name(),
        port_formula: plan.port_scheme.formula(),
        ports: plan
            .ports
            .iter()
            .map(|(port, (nic, explicit))| PortView {
                port: *port,
                vm: nic.vm,
                eth: nic.eth,
                explicit: *explicit,
            })
            .collect(),
        vms,
        links: plan.links.iter().map(link_view).collect(),
        relays: super::tcp::relays(plan)
            .into_values()
            .flatten()
            .map(|r| RelayView {
                endpoints: r.endpoints(),
                link: r.link,
                host: r.host.text,
                listens: r.listens,
            })
            .collect(),
        warnings: &plan.warnings,
    };
    let mut text = serde_json::to_string_pretty(&view).expect("serializing plain data");
    text.push('\n');
    text
}

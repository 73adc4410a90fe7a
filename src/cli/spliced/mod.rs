//! What every command that runs a splice shares (`splice`, `demo`, `extcap`): the names of a
//! link's ends, the capture's interfaces, the per-frame printer, the summaries and the
//! control-plane lines.

mod print;
pub(super) mod watch;

pub(super) use print::{Printer, limit_flow, print_summary, stdout_error, time_of_day};

use crate::capture::Interface;
use crate::splice::Direction;

/// The names of a link's two ends, as printed and as capture interface names.
#[derive(Debug, Clone)]
pub(super) struct LinkNames {
    pub link: String,
    pub a: String,
    pub b: String,
    /// More about the link for capture interface descriptions (addresses, MACs, MTU).
    pub detail: String,
}

impl LinkNames {
    /// The names of a planned link's ends (`vm100:eth1`) and the details of its capture
    /// interface descriptions (MACs, bound addresses, host_mtu).
    pub(super) fn planned(link: &crate::plan::Link) -> LinkNames {
        let end = |e: &crate::plan::Endpoint| format!("vm{}:eth{}", e.vm, e.eth);
        let mtu = link
            .host_mtu
            .map_or(String::new(), |m| format!(", host_mtu {m}"));
        LinkNames {
            link: link.name.clone(),
            a: end(&link.a),
            b: end(&link.b),
            detail: format!(
                ", A {} binds {}, B {} binds {}{mtu}",
                link.a.mac, link.a.local, link.b.mac, link.b.local
            ),
        }
    }

    /// The sending and the receiving end of `direction`.
    pub(super) fn ends(&self, direction: Direction) -> (&str, &str) {
        match direction {
            Direction::AToB => (&self.a, &self.b),
            Direction::BToA => (&self.b, &self.a),
        }
    }
}

/// The capture's interfaces (two per link, A then B) and its section comment.
pub(super) fn capture_layout(names: &[LinkNames], snaplen: u32) -> (Vec<Interface>, String) {
    let interfaces = names
        .iter()
        .flat_map(|n| {
            [(&n.a, "A", &n.b), (&n.b, "B", &n.a)].map(|(end, label, peer)| Interface {
                name: end.clone(),
                description: format!("link {} end {label} (peer {peer}){}", n.link, n.detail),
                snaplen,
            })
        })
        .collect();
    let links: Vec<&str> = names.iter().map(|n| n.link.as_str()).collect();
    (
        interfaces,
        format!("linkscope splice of {}", links.join(", ")),
    )
}

/// Waits for the copy consumer thread and returns its consumer, or the error it stopped on.
pub(super) fn join<C>(
    handle: std::thread::JoinHandle<(C, crate::Result<()>)>,
) -> anyhow::Result<C> {
    let (consumer, outcome) = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the copy consumer thread panicked"))?;
    outcome?;
    Ok(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_link_ends_become_named_described_interfaces() {
        let link = crate::plan::links::testing::link();
        let (interfaces, comment) = capture_layout(&[LinkNames::planned(&link)], 128);
        let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["vm100:eth1", "vm102:eth1"]);
        assert_eq!(
            interfaces[0].description,
            "link 100:1-102:1 end A (peer vm102:eth1), A be:24:99:00:64:01 binds \
             127.0.0.1:41001, B be:24:99:00:66:01 binds 127.0.0.1:41021, host_mtu 9000"
        );
        assert!(
            interfaces[1]
                .description
                .starts_with("link 100:1-102:1 end B (peer vm100:eth1)")
        );
        assert_eq!(interfaces[1].snaplen, 128);
        assert_eq!(comment, "linkscope splice of 100:1-102:1");
    }
}

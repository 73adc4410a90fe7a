//! What every command that runs a splice shares (`splice`, `demo`, `extcap`): the capture's
//! interfaces, the per-frame printer, the summaries, the measurements as text and the
//! control-plane lines, all naming links and ends by their [`LinkNames`].

pub(super) mod meter_text;
mod print;
pub(super) mod watch;

pub(super) use print::{Printer, limit_flow, print_summary, stdout_error, time_of_day};

use crate::capture::Interface;
use crate::plan::LinkNames;

/// The capture's interfaces (two per link, A then B) and its section comment. Each
/// interface's description is what a person reads at a glance in Wireshark (`vm100:eth1 ⇄
/// vm102:eth1 on link 100:1-102:1`: this end first, then its peer); the details (which end,
/// MACs, bound addresses, host_mtu) go into the interface's comment; `filter`, the capture
/// filter the frames passed, into its `if_filter`.
pub(super) fn capture_layout(
    names: &[LinkNames],
    snaplen: u32,
    filter: Option<&str>,
) -> (Vec<Interface>, String) {
    let interfaces = names
        .iter()
        .flat_map(|n| {
            [(&n.a, "A", &n.b), (&n.b, "B", &n.a)].map(|(end, label, peer)| Interface {
                name: end.clone(),
                description: format!("{end} \u{21c4} {peer} on link {}", n.link),
                comment: format!("end {label} of link {}{}", n.link, n.detail),
                filter: filter.map(str::to_owned),
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
        let (interfaces, comment) =
            capture_layout(&[LinkNames::planned(&link)], 128, Some("not stp"));
        let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["vm100:eth1", "vm102:eth1"]);
        assert_eq!(
            interfaces[0].description,
            "vm100:eth1 \u{21c4} vm102:eth1 on link 100:1-102:1"
        );
        assert_eq!(
            interfaces[1].description,
            "vm102:eth1 \u{21c4} vm100:eth1 on link 100:1-102:1"
        );
        assert_eq!(
            interfaces[0].comment,
            "end A of link 100:1-102:1, A be:24:99:00:64:01 binds 127.0.0.1:41001, \
             B be:24:99:00:66:01 binds 127.0.0.1:41021, host_mtu 9000"
        );
        assert!(
            interfaces[1]
                .comment
                .starts_with("end B of link 100:1-102:1, A ")
        );
        assert_eq!(interfaces[1].filter.as_deref(), Some("not stp"));
        assert_eq!(interfaces[1].snaplen, 128);
        assert_eq!(comment, "linkscope splice of 100:1-102:1");
    }
}

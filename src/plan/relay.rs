//! Planning a link through a relay-mode splice (`plan --splice SPEC=IP:PORT_A,PORT_B`): end
//! A sends to the splice's first port, end B to its second; what each end binds is unchanged.

use std::net::SocketAddr;

use super::{Plan, Side, find_link};

/// Points both ends of the link named by `spec` at a relay splice listening on `listen_a`
/// (where A sends) and `listen_b` (where B sends), in every renderer's view of the plan.
pub fn through_splice(
    plan: &mut Plan,
    spec: &str,
    listen_a: SocketAddr,
    listen_b: SocketAddr,
) -> crate::Result<()> {
    let name = find_link(&plan.links, spec)?.name.clone();
    let index = plan
        .links
        .iter()
        .position(|l| l.name == name)
        .expect("find_link returned a link of the plan");
    for (side, listen) in [(Side::A, listen_a), (Side::B, listen_b)] {
        let link = &mut plan.links[index];
        let end = match side {
            Side::A => &mut link.a,
            Side::B => &mut link.b,
        };
        end.remote = listen;
        let vm = end.vm;
        for nic in plan.vms.get_mut(&vm).into_iter().flat_map(|v| &mut v.nics) {
            if nic.link == index && nic.side == side {
                nic.remote = listen;
                nic.remote_ip = listen.ip().to_string();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Mapping, PveSource, Showcmd, qemu};

    #[test]
    fn both_ends_send_to_the_splice_and_bind_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping.yaml");
        std::fs::write(
            &path,
            "links:\n  - [100, 1, 102, 1]\n  - [101, 1, 102, 2]\n",
        )
        .unwrap();
        let pve = PveSource {
            config_dir: dir.path().to_owned(),
            showcmd: Showcmd::Nothing,
        };
        let mut plan = crate::plan::plan(&Mapping::load(&path).unwrap(), &pve, 1500).unwrap();
        let (a, b) = (
            "127.0.0.1:47001".parse().unwrap(),
            "127.0.0.1:47002".parse().unwrap(),
        );
        through_splice(&mut plan, "102:1", a, b).unwrap();
        let after = qemu::render(&plan, qemu::Netdev::Socket);
        assert_eq!(plan.links[0].a.remote, a);
        assert_eq!(plan.links[0].b.remote, b);
        assert_eq!(plan.links[1].a.remote, plan.links[1].b.local);
        assert!(
            after.contains("udp=127.0.0.1:47001,localaddr=127.0.0.1:41001"),
            "{after}"
        );
        assert!(
            after.contains("udp=127.0.0.1:47002,localaddr=127.0.0.1:41021"),
            "{after}"
        );
        assert!(
            after.contains("udp=127.0.0.1:41022,localaddr=127.0.0.1:41011"),
            "{after}"
        );
        assert!(
            after.contains("udp=127.0.0.1:41011,localaddr=127.0.0.1:41022"),
            "{after}"
        );
        assert!(through_splice(&mut plan, "999:1", a, b).is_err());
    }
}

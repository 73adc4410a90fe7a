//! The `libvirt` renderer: an `<interface type='udp'>` element per NIC, grouped per VM, to
//! paste into each domain's `<devices>`.

use super::Plan;

/// libvirt's model name for a QEMU device name.
fn model(device: &str) -> &str {
    match device {
        "virtio-net-pci" | "virtio-net" | "virtio" => "virtio",
        other => other,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// Per VM ascending: a `<!-- VM … -->` comment and its interfaces.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for (vm, v) in &plan.vms {
        out.push_str(&format!("<!-- VM {vm} -->\n"));
        for nic in &v.nics {
            let link = &plan.links[nic.link];
            out.push_str(&format!(
                "<interface type='udp'>\n  <!-- net{} eth{}: link {} side {} -->\n  <mac address='{}'/>\n  <source address='{}' port='{}'>\n    <local address='{}' port='{}'/>\n  </source>\n  <model type='{}'/>\n",
                nic.net,
                nic.eth,
                link.name,
                nic.side.name(),
                nic.mac,
                nic.remote.ip(),
                nic.remote.port(),
                nic.local.ip(),
                nic.local.port(),
                escape(model(&plan.model)),
            ));
            if let Some(mtu) = link.host_mtu {
                out.push_str(&format!("  <mtu size='{mtu}'/>\n"));
            }
            out.push_str("</interface>\n");
        }
    }
    out
}

//! `linkscope decode`: LLDP, STP/RSTP/MSTP/PVST+, LACP and Marker frames of pcap / pcapng
//! files, as readable lines or as JSON objects (one per control frame).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use pcap_file::DataLink;
use serde_json::{Value, json};

use crate::wire::savefile::{Reader, Record};
use crate::wire::{self, Control, Frame, Payload, lacp, lldp, marker, stp};

/// Decode the layer-2 control plane (LLDP, STP/RSTP/MSTP/PVST+, LACP, Marker) of captures.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// pcap or pcapng files
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// One JSON object per control frame instead of text (no summary)
    #[arg(long)]
    json: bool,
    /// Add a count per EtherType (or LLC/SNAP header) of the other frames to the summary
    #[arg(long)]
    all: bool,
}

/// Per-interface counts for the summary.
#[derive(Default)]
struct Counts {
    frames: u64,
    protocols: BTreeMap<&'static str, u64>,
    errors: u64,
    others: BTreeMap<String, u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for path in &args.files {
        let mut reader = Reader::open(path)?;
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        if args.files.len() > 1 && !args.json {
            writeln!(out, "== {}", path.display())?;
        }
        while let Some(record) = reader.next_record() {
            let record = record?;
            let name = record
                .interface
                .clone()
                .unwrap_or_else(|| format!("if{}", record.interface_id));
            let c = counts.entry(name).or_default();
            c.frames += 1;
            if record.link_type != DataLink::ETHERNET {
                *c.others
                    .entry(format!("link type {:?}", record.link_type))
                    .or_default() += 1;
                continue;
            }
            let frame = match wire::classify(&record.data) {
                Ok(f) => f,
                Err(_) => {
                    *c.others.entry("malformed Ethernet".into()).or_default() += 1;
                    continue;
                }
            };
            let Some(decoded) = frame.control() else {
                *c.others.entry(other_key(&frame)).or_default() += 1;
                continue;
            };
            let proto = frame.protocol().map_or("?", |p| p.name());
            *c.protocols.entry(proto).or_default() += 1;
            if decoded.is_err() {
                c.errors += 1;
            }
            if args.json {
                serde_json::to_writer(&mut out, &to_json(&record, &frame, proto, &decoded))?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", line(&record, &frame, proto, &decoded))?;
            }
        }
        if !args.json {
            summary(&mut out, &counts, args.all)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn other_key(frame: &Frame<'_>) -> String {
    match frame.payload {
        Payload::EtherType(t, _) => format!("ethertype {:#06x}", t.0),
        Payload::Slow { subtype, .. } => format!("slow protocol subtype {subtype}"),
        Payload::Snap { oui, pid, .. } => format!("snap {} {pid:#06x}", oui_text(oui)),
        Payload::Llc { dsap, ssap, .. } => format!("llc {dsap:#04x}/{ssap:#04x}"),
        Payload::Lldp(_)
        | Payload::Stp(_)
        | Payload::Pvst(_)
        | Payload::Lacp(_)
        | Payload::Marker(_) => "control".into(),
    }
}

fn summary(
    out: &mut impl Write,
    counts: &BTreeMap<String, Counts>,
    all: bool,
) -> std::io::Result<()> {
    for (name, c) in counts {
        write!(out, "-- {name}: {} frames", c.frames)?;
        for (proto, n) in &c.protocols {
            write!(out, ", {proto} {n}")?;
        }
        if c.errors > 0 {
            write!(out, ", {} undecodable", c.errors)?;
        }
        let others: u64 = c.others.values().sum();
        write!(out, ", other {others}")?;
        writeln!(out)?;
        if all {
            for (key, n) in &c.others {
                writeln!(out, "   {key}: {n}")?;
            }
        }
    }
    Ok(())
}

/// `HH:MM:SS.ffffff` (UTC) of a time since the epoch.
fn clock(t: Duration) -> String {
    let s = t.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_micros()
    )
}

fn line(
    record: &Record,
    frame: &Frame<'_>,
    proto: &str,
    decoded: &Result<Control, wire::Error>,
) -> String {
    let mut s = format!(
        "{:>6} {} {:<6} {} {} > {}",
        record.index,
        clock(record.time),
        match decoded {
            Ok(Control::Stp(r)) if r.pvst_vlan.is_some() => "PVST+".to_string(),
            _ => proto.to_uppercase(),
        },
        record.interface.as_deref().unwrap_or("-"),
        frame.src,
        frame.dst
    );
    for vlan in frame.vlans.as_slice() {
        s.push_str(&format!(" vlan {vlan}"));
    }
    match decoded {
        Ok(c) => s.push_str(&format!(" {c}")),
        Err(e) => s.push_str(&format!(" malformed: {e}")),
    }
    s
}

fn oui_text(oui: [u8; 3]) -> String {
    format!("{:02x}:{:02x}:{:02x}", oui[0], oui[1], oui[2])
}

fn to_json(
    record: &Record,
    frame: &Frame<'_>,
    proto: &str,
    decoded: &Result<Control, wire::Error>,
) -> Value {
    let mut v = json!({
        "frame": record.index,
        "time": record.time.as_secs_f64(),
        "interface": record.interface,
        "src": frame.src.to_string(),
        "dst": frame.dst.to_string(),
        "vlan": frame.vlans.as_slice(),
        "proto": proto,
    });
    let body = match decoded {
        Ok(Control::Lldp(r)) => lldp_json(r),
        Ok(Control::Stp(r)) => stp_json(r),
        Ok(Control::Lacp(r)) => lacp_json(r),
        Ok(Control::Marker(r)) => marker_json(r),
        Err(e) => json!({ "error": e.to_string() }),
    };
    if let (Value::Object(map), Value::Object(extra)) = (&mut v, body) {
        map.extend(extra);
    }
    v
}

fn id_json(id: Option<(String, String)>) -> Value {
    id.map_or(
        Value::Null,
        |(subtype, value)| json!({ "subtype": subtype, "value": value }),
    )
}

fn lldp_json(r: &lldp::Repr) -> Value {
    let org_tlvs: Vec<Value> = r
        .org_tlvs()
        .filter_map(|o| match o {
            lldp::Org::Other { oui, subtype, info } => Some(json!({
                "oui": oui_text(*oui),
                "subtype": subtype,
                "hex": wire::hex(info),
            })),
            _ => None,
        })
        .collect();
    let unknown_tlvs: Vec<Value> = r
        .tlvs
        .iter()
        .filter_map(|t| match t {
            lldp::TlvRepr::Unknown { tlv_type, value } => {
                Some(json!({ "type": tlv_type.0, "hex": wire::hex(value) }))
            }
            _ => None,
        })
        .collect();
    json!({
        "chassis_id": id_json(r.chassis_id()),
        "port_id": id_json(r.port_id()),
        "ttl": r.ttl(),
        "port_description": r.port_description(),
        "system_name": r.system_name(),
        "system_description": r.system_description(),
        "capabilities": r.capabilities().map(|(available, enabled)| json!({
            "available": available.names(),
            "enabled": enabled.names(),
        })),
        "management_addresses": r.management_addresses().map(|m| json!({
            "address": m.address_text(),
            "if_subtype": m.if_subtype_name(),
            "if_number": m.if_number,
        })).collect::<Vec<_>>(),
        "port_vlan_id": r.port_vlan_id(),
        "max_frame_size": r.max_frame_size(),
        "org_tlvs": org_tlvs,
        "unknown_tlvs": unknown_tlvs,
    })
}

fn bridge_json(b: &stp::BridgeId) -> Value {
    json!({ "priority": b.priority, "system_id_ext": b.system_id_ext, "mac": b.mac.to_string() })
}

fn flags_json(f: stp::Flags) -> Value {
    json!({
        "tc": f.tc(),
        "proposal": f.proposal(),
        "port_role": f.port_role().name(),
        "learning": f.learning(),
        "forwarding": f.forwarding(),
        "agreement": f.agreement(),
        "tc_ack": f.tc_ack(),
    })
}

fn stp_json(r: &stp::Repr) -> Value {
    let c = r.config();
    let mst = r.mst().map(|m| {
        json!({
            "config_name": m.config_name_text(),
            "revision": m.revision,
            "digest": m.digest_hex(),
            "cist_internal_root_path_cost": m.cist_internal_root_path_cost,
            "cist_bridge": bridge_json(&m.cist_bridge),
            "remaining_hops": m.remaining_hops,
            "msti": m.mstis.iter().map(|x| json!({
                "id": x.regional_root.system_id_ext,
                "flags": flags_json(x.flags),
                "regional_root": bridge_json(&x.regional_root),
                "internal_root_path_cost": x.internal_root_path_cost,
                "bridge_priority": x.bridge_priority,
                "port_priority": x.port_priority,
                "remaining_hops": x.remaining_hops,
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "version": r.version.0,
        "bpdu_type": r.kind_name(),
        "flags": c.map(|c| flags_json(c.flags)),
        "root": c.map(|c| bridge_json(&c.root)),
        "root_path_cost": c.map(|c| c.root_path_cost),
        "bridge": c.map(|c| bridge_json(&c.bridge)),
        "port_id": c.map(|c| c.port_id),
        "message_age": c.map(|c| stp::seconds(c.message_age)),
        "max_age": c.map(|c| stp::seconds(c.max_age)),
        "hello_time": c.map(|c| stp::seconds(c.hello_time)),
        "forward_delay": c.map(|c| stp::seconds(c.forward_delay)),
        "mst": mst,
        "pvst_vlan": r.pvst_vlan,
    })
}

fn lacp_info_json(i: &lacp::Info) -> Value {
    let state: serde_json::Map<String, Value> = i
        .state
        .bits()
        .map(|(name, set)| (name.to_string(), Value::Bool(set)))
        .collect();
    json!({
        "system_priority": i.system_priority,
        "system": i.system.to_string(),
        "key": i.key,
        "port_priority": i.port_priority,
        "port": i.port,
        "state": state,
    })
}

fn lacp_json(r: &lacp::Repr) -> Value {
    json!({ "actor": lacp_info_json(&r.actor), "partner": lacp_info_json(&r.partner) })
}

fn marker_json(r: &marker::Repr) -> Value {
    json!({
        "marker_type": r.kind_name(),
        "requester_port": r.requester_port,
        "requester_system": r.requester_system.to_string(),
        "transaction_id": r.transaction_id,
    })
}

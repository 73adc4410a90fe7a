//! The mapping model (`mapping.yaml`) and its loading from the positioned YAML tree.
//!
//! The file is read the way the reference generator (gen_pve_links_args.py, which uses
//! PyYAML) reads it, so every file it accepts means the same here; every refusal names the
//! file, line, column and field.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::ports::PortScheme;
use super::yaml::{self, Node, Value};

/// A position in the mapping file (1-based; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(node: &Node) -> Pos {
        Pos {
            line: node.line,
            column: node.column,
        }
    }
}

/// A loaded, validated `mapping.yaml`.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    pub defaults: Defaults,
    pub links: Vec<LinkSpec>,
    /// Things worth telling the user that do not stop the plan (unknown keys, …).
    pub warnings: Vec<String>,
}

/// How PCI slots are chosen for new NICs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciStrategy {
    /// The lowest free slot in 0x02..=0x1d.
    LowestFree,
    /// The first free slot above the VM's highest NIC slot, else the lowest free one.
    NextHighest,
}

impl PciStrategy {
    pub fn name(self) -> &'static str {
        match self {
            PciStrategy::LowestFree => "lowest_free",
            PciStrategy::NextHighest => "next_highest",
        }
    }
}

/// An IP address as written in the mapping (the `qm` output repeats the text verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIp {
    pub text: String,
    pub addr: IpAddr,
}

impl HostIp {
    /// The loopback address the generator substitutes for same-host links.
    pub fn loopback() -> HostIp {
        HostIp {
            text: "127.0.0.1".into(),
            addr: IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// The `defaults` section with every absent key filled in.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub model: String,
    /// As written; 0 or less omits host_mtu.
    pub host_mtu: i64,
    pub host_mtu_at: Pos,
    pub rx_queue_size: i64,
    pub tx_queue_size: i64,
    /// The three prefix bytes, first byte already made locally administered unicast.
    pub mac_prefix: [u8; 3],
    pub udp_port_base: u32,
    pub udp_ip_by_vm: BTreeMap<u32, HostIp>,
    pub udp_default_ip: HostIp,
    pub loopback_if_same_host: bool,
    pub auto_pci_addr: bool,
    pub pci_alloc_strategy: PciStrategy,
    pub port_scheme: PortScheme,
    /// How links whose ends are on different hosts travel between them, unless the link
    /// says otherwise (`cross_host_transport`, default udp).
    pub cross_host_transport: Transport,
}

/// How a link's frames travel between its two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The VMs' own UDP tunnel, host to host (what QEMU does; large frames fragment when
    /// they exceed the path MTU).
    Udp,
    /// Each VM tunnels over UDP to a `linkscope relay` on its own host, and the two relays
    /// carry the frames between the hosts over one TCP connection (no fragmentation).
    Tcp,
}

impl Transport {
    /// `"udp"` or `"tcp"`, as written in the mapping.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One NIC named by a link: VM id and eth index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NicRef {
    pub vm: u32,
    pub eth: u32,
}

/// One entry of `links`: `[vmA, ethA, vmB, ethB]` plus the optional `{port_a, port_b}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    pub a: NicRef,
    pub b: NicRef,
    pub port_a: Option<u16>,
    pub port_b: Option<u16>,
    /// The link's own `transport` and where it is written; `None` follows
    /// `defaults.cross_host_transport`.
    pub transport: Option<(Transport, Pos)>,
    /// Where the link's list starts.
    pub at: Pos,
    /// 0-based index in `links`.
    pub index: usize,
}

impl LinkSpec {
    /// The field path used in messages, e.g. `links[3]`.
    pub fn field(&self) -> String {
        format!("links[{}]", self.index)
    }
}

const DEFAULT_KEYS: &[&str] = &[
    "model",
    "host_mtu",
    "rx_queue_size",
    "tx_queue_size",
    "mac_prefix",
    "udp_port_base",
    "udp_ip_by_vm",
    "udp_default_ip",
    "loopback_if_same_host",
    "auto_pci_addr",
    "pci_alloc_strategy",
    "port_scheme",
    "port_stride",
    "port_first_vmid",
    "cross_host_transport",
];

impl Mapping {
    /// Reads and validates a mapping file of at most [`MAX_MAPPING_BYTES`] of UTF-8 text.
    pub fn load(path: &Path) -> crate::Result<Mapping> {
        let text = read_text(path)?;
        Mapping::parse(path, &text)
    }

    /// Validates mapping text read from `file`.
    pub fn parse(file: &Path, text: &str) -> crate::Result<Mapping> {
        let root = yaml::parse(file, text)?;
        Loader {
            file,
            warnings: Vec::new(),
        }
        .mapping(&root)
    }
}

/// The largest mapping file read (16 MiB): far beyond any lab, small enough that `/dev/zero`
/// or an endless pipe given as the mapping is refused instead of filling memory.
pub const MAX_MAPPING_BYTES: u64 = 16 << 20;

/// The text of the file at `path`: at most [`MAX_MAPPING_BYTES`], UTF-8. Anything else is an
/// input error naming the file (and, for bytes that are not UTF-8, their line, column and
/// byte offset).
fn read_text(path: &Path) -> crate::Result<String> {
    use std::io::Read;
    let io = |source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_MAPPING_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let refuse = |line, column, field: &str, message| crate::Error::Input {
        file: path.to_path_buf(),
        line,
        column,
        field: field.into(),
        message,
    };
    if bytes.len() as u64 > MAX_MAPPING_BYTES {
        return Err(refuse(
            None,
            None,
            "(file)",
            format!(
                "larger than {} MiB: a mapping is a small text file",
                MAX_MAPPING_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        let before = &err.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Characters, not bytes, before the offending byte on its line (all valid UTF-8).
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        refuse(
            Some(line),
            Some(column),
            "(encoding)",
            format!(
                "not UTF-8: byte 0x{:02x} at byte offset {offset} (save the file as UTF-8)",
                err.as_bytes()[offset]
            ),
        )
    })
}

struct Loader<'a> {
    file: &'a Path,
    warnings: Vec<String>,
}

impl Loader<'_> {
    fn error(&self, pos: Pos, field: &str, message: impl Into<String>) -> crate::Error {
        crate::Error::Input {
            file: self.file.to_path_buf(),
            line: (pos.line > 0).then_some(pos.line),
            column: (pos.line > 0).then_some(pos.column),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn warn(&mut self, pos: Pos, field: &str, message: &str) {
        let err = self.error(pos, field, message);
        self.warnings.push(err.to_string());
    }

    fn mapping(mut self, root: &Node) -> crate::Result<Mapping> {
        let Value::Map(entries) = &root.value else {
            return Err(self.error(
                Pos::of(root),
                "(top level)",
                format!(
                    "must be a mapping with `links`, found {}",
                    root.value.kind()
                ),
            ));
        };
        let mut defaults_node = None;
        let mut links_node = None;
        for (key, value) in entries {
            match key_text(key).as_deref() {
                Some("defaults") => defaults_node = Some(value),
                Some("links") => links_node = Some(value),
                _ => self.warn(
                    Pos::of(key),
                    &describe_key(key),
                    "unknown top-level key, ignored (expected `defaults` and `links`)",
                ),
            }
        }
        let defaults = self.defaults(defaults_node)?;
        let links = self.links(root, links_node)?;
        Ok(Mapping {
            file: self.file.to_path_buf(),
            defaults,
            links,
            warnings: self.warnings,
        })
    }

    fn defaults(&mut self, node: Option<&Node>) -> crate::Result<Defaults> {
        let mut keys: BTreeMap<&str, &Node> = BTreeMap::new();
        if let Some(node) = node {
            let Value::Map(entries) = &node.value else {
                return Err(self.error(
                    Pos::of(node),
                    "defaults",
                    format!("must be a mapping, found {}", node.value.kind()),
                ));
            };
            for (key, value) in entries {
                let name = key_text(key);
                match DEFAULT_KEYS.iter().find(|k| Some(**k) == name.as_deref()) {
                    Some(known) => {
                        keys.insert(known, value);
                    }
                    None => self.warn(
                        Pos::of(key),
                        &format!("defaults.{}", describe_key(key)),
                        "unknown key, ignored",
                    ),
                }
            }
        }
        let model = match keys.get("model") {
            None => "virtio-net-pci".to_owned(),
            Some(n) => self.text("defaults.model", n)?,
        };
        let (host_mtu, host_mtu_at) = match keys.get("host_mtu") {
            None => (9300, Pos::default()),
            Some(n) => {
                let v = self.int("defaults.host_mtu", n)?;
                if v > i128::from(u32::MAX) {
                    return Err(self.error(Pos::of(n), "defaults.host_mtu", "too large"));
                }
                (i64::try_from(v).unwrap_or(i64::MIN), Pos::of(n))
            }
        };
        let rx_queue_size =
            self.opt_i64("defaults.rx_queue_size", keys.get("rx_queue_size"), 1024)?;
        let tx_queue_size =
            self.opt_i64("defaults.tx_queue_size", keys.get("tx_queue_size"), 256)?;
        let mac_prefix = match keys.get("mac_prefix") {
            None => super::mac::adjust_prefix([0xbc, 0x24, 0x99]),
            Some(n) => {
                let text = self.text("defaults.mac_prefix", n)?;
                let bytes = super::mac::parse_prefix(&text)
                    .map_err(|m| self.error(Pos::of(n), "defaults.mac_prefix", m))?;
                super::mac::adjust_prefix(bytes)
            }
        };
        let scheme_name = match keys.get("port_scheme") {
            None => None,
            Some(n) => Some((self.text("defaults.port_scheme", n)?, Pos::of(n))),
        };
        let stride_scheme = match &scheme_name {
            None => false,
            Some((name, pos)) => match name.to_ascii_lowercase().as_str() {
                "legacy" => false,
                "stride" => true,
                other => {
                    return Err(self.error(
                        *pos,
                        "defaults.port_scheme",
                        format!("unknown port scheme '{other}' (use legacy or stride)"),
                    ));
                }
            },
        };
        let base_default = if stride_scheme { 10000 } else { 40000 };
        let udp_port_base = match keys.get("udp_port_base") {
            None => base_default,
            Some(n) => {
                let v = self.int("defaults.udp_port_base", n)?;
                let max = if stride_scheme {
                    65535
                } else {
                    i128::from(u32::MAX)
                };
                if !(0..=max).contains(&v) || (stride_scheme && v == 0) {
                    let range = if stride_scheme {
                        "1..=65535"
                    } else {
                        "0 or more"
                    };
                    return Err(self.error(
                        Pos::of(n),
                        "defaults.udp_port_base",
                        format!("{v} out of range (must be {range})"),
                    ));
                }
                u32::try_from(v).unwrap_or(u32::MAX)
            }
        };
        let port_scheme = if stride_scheme {
            let stride = self.opt_range(
                "defaults.port_stride",
                keys.get("port_stride"),
                32,
                1,
                65535,
            )?;
            let first_vmid = self.opt_range(
                "defaults.port_first_vmid",
                keys.get("port_first_vmid"),
                100,
                0,
                u32::MAX,
            )?;
            PortScheme::Stride {
                base: udp_port_base,
                stride,
                first_vmid,
            }
        } else {
            for key in ["port_stride", "port_first_vmid"] {
                if let Some(n) = keys.get(key) {
                    self.warn(
                        Pos::of(n),
                        &format!("defaults.{key}"),
                        "only used with `port_scheme: stride`, ignored",
                    );
                }
            }
            PortScheme::Legacy {
                digit: udp_port_base.to_string().as_bytes()[0] - b'0',
            }
        };
        let mut udp_ip_by_vm = BTreeMap::new();
        if let Some(n) = keys.get("udp_ip_by_vm") {
            let Value::Map(entries) = &n.value else {
                return Err(self.error(
                    Pos::of(n),
                    "defaults.udp_ip_by_vm",
                    format!("must be a mapping of VMID to IP, found {}", n.value.kind()),
                ));
            };
            for (key, value) in entries {
                let vm = self.vmid("defaults.udp_ip_by_vm", key)?;
                let field = format!("defaults.udp_ip_by_vm.{vm}");
                let ip = self.ip(&field, value)?;
                if udp_ip_by_vm.insert(vm, ip).is_some() {
                    return Err(self.error(Pos::of(key), &field, "VMID given twice"));
                }
            }
        }
        let udp_default_ip = match keys.get("udp_default_ip") {
            None => HostIp::loopback(),
            Some(n) => self.ip("defaults.udp_default_ip", n)?,
        };
        let loopback_if_same_host = self.flag(
            "defaults.loopback_if_same_host",
            keys.get("loopback_if_same_host"),
            true,
        );
        let auto_pci_addr = self.flag("defaults.auto_pci_addr", keys.get("auto_pci_addr"), false);
        let pci_alloc_strategy = match keys.get("pci_alloc_strategy") {
            None => PciStrategy::LowestFree,
            Some(n) => {
                let text = self.text("defaults.pci_alloc_strategy", n)?.to_lowercase();
                match text.as_str() {
                    "lowest_free" => PciStrategy::LowestFree,
                    "next_highest" => PciStrategy::NextHighest,
                    _ => {
                        return Err(self.error(
                            Pos::of(n),
                            "defaults.pci_alloc_strategy",
                            format!("invalid '{text}' (use lowest_free or next_highest)"),
                        ));
                    }
                }
            }
        };
        let cross_host_transport = match keys.get("cross_host_transport") {
            None => Transport::Udp,
            Some(n) => self.transport("defaults.cross_host_transport", n)?,
        };
        Ok(Defaults {
            model,
            host_mtu,
            host_mtu_at,
            rx_queue_size,
            tx_queue_size,
            mac_prefix,
            udp_port_base,
            udp_ip_by_vm,
            udp_default_ip,
            loopback_if_same_host,
            auto_pci_addr,
            pci_alloc_strategy,
            port_scheme,
            cross_host_transport,
        })
    }

    fn links(&mut self, root: &Node, node: Option<&Node>) -> crate::Result<Vec<LinkSpec>> {
        let Some(node) = node else {
            return Err(self.error(Pos::of(root), "links", "no `links` provided"));
        };
        let items = match &node.value {
            Value::Seq(items) if !items.is_empty() => items,
            Value::Seq(_) | Value::Null => {
                return Err(self.error(
                    Pos::of(node),
                    "links",
                    "no links provided (the list is empty)",
                ));
            }
            other => {
                return Err(self.error(
                    Pos::of(node),
                    "links",
                    format!(
                        "must be a list of [vmA, ethA, vmB, ethB], found {}",
                        other.kind()
                    ),
                ));
            }
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| self.link(index, item))
            .collect()
    }

    fn link(&self, index: usize, item: &Node) -> crate::Result<LinkSpec> {
        let field = format!("links[{index}]");
        let parts = match &item.value {
            Value::Seq(parts) if parts.len() == 4 || parts.len() == 5 => parts,
            other => {
                let found = match other {
                    Value::Seq(p) => format!("a list of {} elements", p.len()),
                    v => v.kind().to_owned(),
                };
                return Err(self.error(
                    Pos::of(item),
                    &field,
                    format!("each link must be [vmA, ethA, vmB, ethB] (optionally a 5th element {{port_a, port_b, transport}}), found {found}"),
                ));
            }
        };
        let a = NicRef {
            vm: self.vmid(&format!("{field}.vmA"), &parts[0])?,
            eth: self.eth(&format!("{field}.ethA"), &parts[1])?,
        };
        let b = NicRef {
            vm: self.vmid(&format!("{field}.vmB"), &parts[2])?,
            eth: self.eth(&format!("{field}.ethB"), &parts[3])?,
        };
        let (mut port_a, mut port_b, mut transport) = (None, None, None);
        if let Some(extra) = parts.get(4) {
            let Value::Map(entries) = &extra.value else {
                return Err(self.error(
                    Pos::of(extra),
                    &format!("{field}[4]"),
                    format!(
                        "must be a mapping {{port_a, port_b, transport}}, found {}",
                        extra.value.kind()
                    ),
                ));
            };
            for (key, value) in entries {
                let name = key_text(key);
                let slot = match name.as_deref() {
                    Some("port_a") => &mut port_a,
                    Some("port_b") => &mut port_b,
                    Some("transport") => {
                        let given = self.transport(&format!("{field}.transport"), value)?;
                        transport = Some((given, Pos::of(value)));
                        continue;
                    }
                    _ => {
                        return Err(self.error(
                            Pos::of(key),
                            &format!("{field}.{}", describe_key(key)),
                            "unknown key (use port_a, port_b and transport)",
                        ));
                    }
                };
                let key_field = format!("{field}.{}", name.unwrap_or_default());
                let port = self.int(&key_field, value)?;
                let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
                    self.error(
                        Pos::of(value),
                        &key_field,
                        format!("port {port} out of range 1..=65535"),
                    )
                })?;
                *slot = Some(port);
            }
        }
        Ok(LinkSpec {
            a,
            b,
            port_a,
            port_b,
            transport,
            at: Pos::of(item),
            index,
        })
    }

    /// `udp` or `tcp` (any case).
    fn transport(&self, field: &str, node: &Node) -> crate::Result<Transport> {
        let text = self.text(field, node)?;
        match text.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            _ => Err(self.error(
                Pos::of(node),
                field,
                format!("unknown transport '{text}' (use udp or tcp)"),
            )),
        }
    }

    /// Python's `int(x)` on what YAML gave: integers, and strings holding one.
    fn int(&self, field: &str, node: &Node) -> crate::Result<i128> {
        match &node.value {
            Value::Int(v) => Ok(*v),
            Value::Str(s) => parse_py_int(s).ok_or_else(|| {
                self.error(Pos::of(node), field, format!("'{s}' is not an integer"))
            }),
            other => Err(self.error(
                Pos::of(node),
                field,
                format!("expected an integer, found {}", other.kind()),
            )),
        }
    }

    fn opt_i64(&self, field: &str, node: Option<&&Node>, default: i64) -> crate::Result<i64> {
        match node {
            None => Ok(default),
            Some(n) => {
                let v = self.int(field, n)?;
                i64::try_from(v).map_err(|_| self.error(Pos::of(n), field, "integer too large"))
            }
        }
    }

    fn opt_range(
        &self,
        field: &str,
        node: Option<&&Node>,
        default: u32,
        min: u32,
        max: u32,
    ) -> crate::Result<u32> {
        match node {
            None => Ok(default),
            Some(n) => {
                let v = self.int(field, n)?;
                u32::try_from(v)
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| {
                        self.error(Pos::of(n), field, format!("{v} out of range {min}..={max}"))
                    })
            }
        }
    }

    fn vmid(&self, field: &str, node: &Node) -> crate::Result<u32> {
        let v = self.int(field, node)?;
        u32::try_from(v).map_err(|_| {
            self.error(
                Pos::of(node),
                field,
                format!("VMID {v} out of range 0..=4294967295"),
            )
        })
    }

    /// An eth token: an integer or a string matching `^(eth)?\d+$` (any case).
    fn eth(&self, field: &str, node: &Node) -> crate::Result<u32> {
        let token = match &node.value {
            Value::Int(v) => v.to_string(),
            Value::Str(s) => s.trim().to_owned(),
            other => {
                return Err(self.error(
                    Pos::of(node),
                    field,
                    format!(
                        "invalid eth index: expected an integer or ethN, found {}",
                        other.kind()
                    ),
                ));
            }
        };
        let digits = match token.get(..3) {
            Some(prefix) if prefix.eq_ignore_ascii_case("eth") => &token[3..],
            _ => token.as_str(),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(
                Pos::of(node),
                field,
                format!("invalid eth index '{token}' (an integer or ethN)"),
            ));
        }
        digits.parse().map_err(|_| {
            self.error(
                Pos::of(node),
                field,
                format!("eth index {digits} too large"),
            )
        })
    }

    /// Python's `str(x)` for scalars that have an obvious text.
    fn text(&self, field: &str, node: &Node) -> crate::Result<String> {
        match &node.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(v) => Ok(v.to_string()),
            Value::Bool(true) => Ok("True".into()),
            Value::Bool(false) => Ok("False".into()),
            other => Err(self.error(
                Pos::of(node),
                field,
                format!("expected a string, found {}", other.kind()),
            )),
        }
    }

    fn ip(&self, field: &str, node: &Node) -> crate::Result<HostIp> {
        let text = self.text(field, node)?;
        let addr = text.parse::<IpAddr>().map_err(|_| {
            self.error(
                Pos::of(node),
                field,
                format!("'{text}' is not an IP address"),
            )
        })?;
        Ok(HostIp { text, addr })
    }

    /// Python's `bool(x)`: YAML booleans as they are; anything else by truthiness, with a
    /// warning, because a quoted "false" is true for the reference generator too.
    fn flag(&mut self, field: &str, node: Option<&&Node>, default: bool) -> bool {
        let Some(node) = node else { return default };
        let truth = match &node.value {
            Value::Bool(b) => return *b,
            Value::Null => false,
            Value::Int(v) => *v != 0,
            Value::Float(v) => *v != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Seq(v) => !v.is_empty(),
            Value::Map(v) => !v.is_empty(),
        };
        let message = format!(
            "{} is not a boolean; read as {} (Python truthiness, as the reference generator does)",
            node.value.kind(),
            truth
        );
        self.warn(Pos::of(node), field, &message);
        truth
    }
}

/// The text of a mapping key when it is a scalar.
fn key_text(key: &Node) -> Option<String> {
    match &key.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(v) => Some(v.to_string()),
        _ => None,
    }
}

fn describe_key(key: &Node) -> String {
    key_text(key).unwrap_or_else(|| format!("({} key)", key.value.kind()))
}

/// Python's `int(str)`: surrounding whitespace, an optional sign, decimal digits with single
/// underscores between them.
pub(crate) fn parse_py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let value: i128 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> crate::Result<Mapping> {
        Mapping::parse(Path::new("m.yaml"), text)
    }

    fn refusal(text: &str) -> (Option<usize>, Option<usize>, String, String) {
        match load(text).unwrap_err() {
            crate::Error::Input {
                line,
                column,
                field,
                message,
                ..
            } => (line, column, field, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn defaults_when_absent() {
        let m = load("links:\n  - [100, 1, 102, eth1]\n").unwrap();
        let d = &m.defaults;
        assert_eq!(d.model, "virtio-net-pci");
        assert_eq!(d.host_mtu, 9300);
        assert_eq!((d.rx_queue_size, d.tx_queue_size), (1024, 256));
        assert_eq!(d.mac_prefix, [0xbe, 0x24, 0x99]);
        assert_eq!(d.port_scheme, PortScheme::Legacy { digit: 4 });
        assert_eq!(d.udp_default_ip, HostIp::loopback());
        assert!(d.loopback_if_same_host && !d.auto_pci_addr);
        assert_eq!(d.pci_alloc_strategy, PciStrategy::LowestFree);
        assert_eq!(m.links[0].b, NicRef { vm: 102, eth: 1 });
    }

    #[test]
    fn yaml11_booleans_and_string_numbers() {
        let m = load(
            "defaults:\n  auto_pci_addr: yes\n  loopback_if_same_host: off\n  host_mtu: '1500'\nlinks:\n  - ['100', ETH2, 102, ' eth3 ']\n",
        )
        .unwrap();
        assert!(m.defaults.auto_pci_addr);
        assert!(!m.defaults.loopback_if_same_host);
        assert_eq!(m.defaults.host_mtu, 1500);
        assert_eq!(m.links[0].a, NicRef { vm: 100, eth: 2 });
        assert_eq!(m.links[0].b.eth, 3);
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn refusals_name_position_and_field() {
        let (line, column, field, _) = refusal("links:\n  - [100, 1, 102]\n");
        assert_eq!(
            (line, column, field.as_str()),
            (Some(2), Some(5), "links[0]")
        );
        let (_, _, field, _) = refusal("links:\n  - [100, aaé1, 102, 1]\n");
        assert_eq!(field, "links[0].ethA");
        let (line, column, field, message) = refusal("links:\n  - [100, x1, 102, 1]\n");
        assert_eq!(
            (line, column, field.as_str()),
            (Some(2), Some(11), "links[0].ethA")
        );
        assert!(message.contains("x1"), "{message}");
        let (line, _, field, _) =
            refusal("defaults:\n  pci_alloc_strategy: best\nlinks:\n  - [1, 1, 2, 1]\n");
        assert_eq!(
            (line, field.as_str()),
            (Some(2), "defaults.pci_alloc_strategy")
        );
        let (line, _, field, _) =
            refusal("defaults:\n  mac_prefix: 'bc:24'\nlinks: [[1, 1, 2, 1]]\n");
        assert_eq!((line, field.as_str()), (Some(2), "defaults.mac_prefix"));
        let (_, _, field, _) = refusal("links: []\n");
        assert_eq!(field, "links");
        let (_, _, field, _) = refusal("- 1\n");
        assert_eq!(field, "(top level)");
        let (line, _, field, _) = refusal("links:\n  - [1, 1, 2, 1, {port_a: 70000}]\n");
        assert_eq!((line, field.as_str()), (Some(2), "links[0].port_a"));
    }

    #[test]
    fn unknown_keys_and_non_boolean_flags_warn() {
        let m = load(
            "defaults:\n  hostmtu: 1\n  auto_pci_addr: 'false'\nlinks: [[1, 1, 2, 1]]\nextra: 1\n",
        )
        .unwrap();
        assert!(m.defaults.auto_pci_addr);
        assert_eq!(m.warnings.len(), 3, "{:?}", m.warnings);
        assert!(
            m.warnings[0].starts_with("m.yaml:5:1: extra:"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn explicit_ports() {
        let m = load("links:\n  - [100, 1, 102, 1, {port_a: 45001, port_b: 45002}]\n  - [100, 2, 102, 2, {port_b: 45003}]\n").unwrap();
        assert_eq!(
            (m.links[0].port_a, m.links[0].port_b),
            (Some(45001), Some(45002))
        );
        assert_eq!((m.links[1].port_a, m.links[1].port_b), (None, Some(45003)));
    }

    #[test]
    fn python_int_strings() {
        assert_eq!(parse_py_int(" +1_000 "), Some(1000));
        assert_eq!(parse_py_int("-7"), Some(-7));
        for bad in ["", "1__0", "_1", "1_", "0x10", "1.5", "- 1"] {
            assert_eq!(parse_py_int(bad), None, "{bad}");
        }
    }
}

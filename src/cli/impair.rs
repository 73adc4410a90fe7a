//! The impairment options `splice` and `relay` share: a clap [`ImpairArgs`] to flatten into
//! a subcommand's arguments, resolved into the library's [`ImpairConfig`].

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use clap::Args;

use crate::control::{ControlConfig, QmpTarget};
use crate::impair::{DirectedSpec, ImpairConfig, spec};

/// Impairment and live control (`linkscope ctl`).
#[derive(Debug, Clone, Default, Args)]
pub struct ImpairArgs {
    /// Impair the links: `[DIR:]SPEC`, DIR `a>b` or `b>a` (both when absent), SPEC
    /// space-separated netem keys, e.g. 'delay=10ms jitter=1ms loss=1%' (see docs/impair.md);
    /// repeatable, a later one replaces an earlier one for its directions.
    #[arg(long, value_name = "[DIR:]SPEC")]
    pub impair: Vec<String>,
    /// Seed of every random choice of the impairment (loss, jitter, duplicate, reorder,
    /// corrupt): the same seed makes the same choices.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// The control socket `linkscope ctl` talks to (default:
    /// $XDG_RUNTIME_DIR/linkscope/PID.sock, else /run/linkscope/PID.sock).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// A VM's QMP socket, VM=PATH (repeatable): `ctl down/up/flap` also pull the cable of
    /// that VM's NIC on the link (QMP set_link), so the guest sees carrier loss.
    #[arg(long, value_name = "VM=PATH")]
    pub qmp: Vec<String>,
}

/// One spliced link's ends as `--qmp` needs them: the link's name and each end's VM and MAC
/// (none for links given by address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEnds {
    pub name: String,
    pub ends: Vec<(u32, String)>,
}

impl ImpairArgs {
    /// Checks and resolves the options for `links`: every SPEC parses, every `--qmp` VM is
    /// an end of one of them.
    pub fn resolve(&self, links: &[LinkEnds]) -> crate::Result<ImpairConfig> {
        let specs = self
            .impair
            .iter()
            .map(|text| DirectedSpec::parse(text, "--impair"))
            .collect::<crate::Result<Vec<_>>>()?;
        let mut qmp: HashMap<String, Vec<QmpTarget>> = HashMap::new();
        let mut vms = BTreeSet::new();
        for text in &self.qmp {
            let bad = |message: String| crate::Error::Argument {
                field: "--qmp".into(),
                message: format!("{text:?}: {message}"),
            };
            let (vm, path) = text.split_once('=').ok_or_else(|| {
                bad("expected VM=PATH, e.g. 100=/var/run/qemu-server/100.qmp".into())
            })?;
            let vm: u32 = vm
                .trim()
                .parse()
                .map_err(|_| bad("VM is a VM id (a number)".into()))?;
            if !vms.insert(vm) {
                return Err(bad(format!("VM {vm} given twice")));
            }
            let mut found = false;
            for link in links {
                for (end_vm, mac) in &link.ends {
                    if *end_vm == vm {
                        found = true;
                        qmp.entry(link.name.clone()).or_default().push(QmpTarget {
                            socket: PathBuf::from(path),
                            mac: mac.clone(),
                        });
                    }
                }
            }
            if !found {
                return Err(bad(format!(
                    "VM {vm} is not an end of a spliced link (--qmp needs --mapping)"
                )));
            }
        }
        Ok(ImpairConfig {
            specs: spec::resolve(&specs),
            seed: self.seed,
            control: ControlConfig {
                path: self.control.clone(),
                qmp,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Vec<LinkEnds> {
        vec![LinkEnds {
            name: "100:1-102:1".into(),
            ends: vec![
                (100, "be:24:99:00:64:01".into()),
                (102, "be:24:99:00:66:01".into()),
            ],
        }]
    }

    #[test]
    fn qmp_targets_follow_the_vms_of_the_links() {
        let args = ImpairArgs {
            impair: vec!["a>b:delay=5ms".into()],
            qmp: vec!["102=/tmp/102.qmp".into()],
            seed: Some(3),
            ..ImpairArgs::default()
        };
        let config = args.resolve(&links()).unwrap();
        assert_eq!(config.specs[0].delay, std::time::Duration::from_millis(5));
        assert!(config.specs[1].is_clear());
        assert_eq!(
            config.control.qmp["100:1-102:1"],
            [QmpTarget {
                socket: "/tmp/102.qmp".into(),
                mac: "be:24:99:00:66:01".into()
            }]
        );
    }

    #[test]
    fn bad_options_name_the_argument() {
        for (args, needle) in [
            (vec!["--impair", "loss=5"], "--impair: loss: "),
            (
                vec!["--qmp", "105=/x"],
                "--qmp: \"105=/x\": VM 105 is not an end",
            ),
            (vec!["--qmp", "x=/x"], "--qmp: \"x=/x\": VM is"),
            (vec!["--qmp", "/x"], "--qmp: \"/x\": expected VM=PATH"),
        ] {
            #[derive(clap::Parser)]
            struct Cli {
                #[command(flatten)]
                impair: ImpairArgs,
            }
            let cli = <Cli as clap::Parser>::parse_from(std::iter::once("x").chain(args));
            let err = cli.impair.resolve(&links()).unwrap_err().to_string();
            assert!(err.starts_with(needle), "{err}");
            assert!(!err.is_empty());
        }
    }
}

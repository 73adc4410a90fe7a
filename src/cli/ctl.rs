//! `linkscope ctl`: changes a running splice or relay through its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::control::{self, LinkState, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The control socket (default: the one process under $XDG_RUNTIME_DIR/linkscope or
    /// /run/linkscope that serves LINK).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// The link, by the name the splice gives it (e.g. 100:1-102:1).
    link: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Replace the impairment: `[DIR:]SPEC` words, as --impair (both directions when no DIR).
    Impair {
        #[arg(required = true, value_name = "[DIR:]SPEC")]
        spec: Vec<String>,
    },
    /// Remove every impairment and plug the cable back.
    Clear,
    /// Pull the cable: everything dropped both ways (and QMP set_link down with --qmp).
    Down,
    /// Plug the cable back.
    Up,
    /// Pull and plug the cable: DOWN_S,UP_S[,COUNT] (until the next command without COUNT).
    Flap {
        #[arg(value_name = "DOWN_S,UP_S[,COUNT]")]
        schedule: String,
    },
    /// The impairment in force and what it did.
    Show {
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let link = args.link.clone();
    let mut json = false;
    let request = match args.action {
        Action::Impair { spec } => {
            // Words without a direction belong to the SPEC before them: `a>b:delay=5ms
            // loss=1%` is one spec even when the shell split it.
            let mut specs: Vec<String> = Vec::new();
            for word in spec {
                let starts_spec = word.starts_with("a>b:") || word.starts_with("b>a:");
                match specs.last_mut() {
                    Some(last) if !starts_spec => {
                        last.push(' ');
                        last.push_str(&word);
                    }
                    _ => specs.push(word),
                }
            }
            for text in &specs {
                crate::impair::DirectedSpec::parse(text, "impair")?;
            }
            Request::Impair { link, specs }
        }
        Action::Clear => Request::Clear { link },
        Action::Down => Request::Down { link },
        Action::Up => Request::Up { link },
        Action::Flap { schedule } => {
            let (down_s, up_s, count) = control::parse_flap(&schedule)?;
            Request::Flap {
                link,
                down_s,
                up_s,
                count,
            }
        }
        Action::Show { json: j } => {
            json = j;
            Request::Show { link: Some(link) }
        }
    };
    match control::send_to_link(args.control.as_deref(), &request) {
        Ok(response) => {
            for state in &response.links {
                if json {
                    println!("{}", serde_json::to_string(state).context("JSON")?);
                } else {
                    print!("{}", render(state));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("linkscope: ctl: {e}");
            Ok(ExitCode::from(if e.is_input() { 2 } else { 1 }))
        }
    }
}

/// The text form of `show`: the link, then one line per direction.
pub fn render(state: &LinkState) -> String {
    let mut out = format!(
        "{}{}\n",
        state.name,
        if state.flapping { " (flapping)" } else { "" }
    );
    for d in &state.directions {
        let c = &d.counters;
        out += &format!(
            "  {} {}{}: dropped {} (loss {}, down {}, mtu {}, queue {}), delayed {}, duplicated {}, reordered {}, corrupted {}, held {}\n",
            d.direction,
            if d.spec.is_empty() { "-" } else { &d.spec },
            if d.down { " [down]" } else { "" },
            c.dropped(),
            c.dropped_loss,
            c.dropped_down,
            c.dropped_mtu,
            c.queue_drops,
            c.delayed,
            c.duplicated,
            c.reordered,
            c.corrupted,
            d.held,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::DirectionState;
    use crate::impair::Counters;

    #[test]
    fn show_renders_one_line_per_direction() {
        let state = LinkState {
            name: "100:1-102:1".into(),
            flapping: true,
            directions: vec![DirectionState {
                direction: "a>b".into(),
                spec: "delay=10ms".into(),
                down: true,
                held: 2,
                counters: Counters {
                    dropped_loss: 1,
                    ..Counters::default()
                },
            }],
        };
        let text = render(&state);
        assert!(
            text.starts_with("100:1-102:1 (flapping)\n  a>b delay=10ms [down]: dropped 1 (loss 1,"),
            "{text}"
        );
    }
}

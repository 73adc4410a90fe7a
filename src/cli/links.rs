//! `linkscope links MAPPING`: the intercept plan, every link's two ends.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan;

/// Show every link's endpoints: what each end binds and where it sends.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mapping file.
    mapping: PathBuf,
    /// Only the links these patterns name, as `splice --link` selects them: a link's name
    /// (100:1-102:1), one end's link (100:1, 100:eth1) or every link of a VM (100, 100:*);
    /// repeatable.
    #[arg(long, value_name = "PATTERN")]
    link: Vec<String>,
    /// Print `{"links":[…]}` instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mapping = plan::Mapping::load(&args.mapping)?;
    for warning in &mapping.warnings {
        eprintln!("linkscope: warning: {warning}");
    }
    let mut links = plan::resolve_links(&mapping)?;
    if !args.link.is_empty() {
        links = plan::select(&links, &args.link)?
            .into_iter()
            .cloned()
            .collect();
    }
    let text = if args.json {
        let mut text = plan::json::links(&links);
        text.push('\n');
        text
    } else {
        table(&links)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One row per link, columns aligned.
fn table(links: &[plan::Link]) -> String {
    let header = [
        "LINK",
        "HOST_MTU",
        "A",
        "A_MAC",
        "A_BINDS",
        "A_SENDS_TO",
        "B",
        "B_MAC",
        "B_BINDS",
        "B_SENDS_TO",
    ]
    .map(str::to_owned);
    let mut rows = vec![header.to_vec()];
    for l in links {
        let mut row = vec![
            l.name.clone(),
            l.host_mtu.map_or_else(|| "-".to_owned(), |m| m.to_string()),
        ];
        for e in [&l.a, &l.b] {
            row.extend([
                format!("{}:eth{}", e.vm, e.eth),
                e.mac.clone(),
                e.local.to_string(),
                e.remote.to_string(),
            ]);
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

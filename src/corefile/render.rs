//! The TOML text of a translation: a header naming every finding, the default block's
//! keys and the shared sections, then each `[[blocks]]`; every key with the Corefile
//! line it comes from.

use super::translate::{BlockConfig, Entry, Severity};
use super::values::quoted;

/// The default block's sections, in the order they are written.
const SECTIONS: [&str; 11] = [
    "",
    "kubernetes",
    "source",
    "forward",
    "forward.stub_domains",
    "cache",
    "hosts",
    "health",
    "ready",
    "metrics",
    "log",
];

/// A `[[blocks]]` entry's sections.
const BLOCK_SECTIONS: [&str; 5] = ["", "forward", "forward.stub_domains", "cache", "hosts"];

/// `serves_zone`: some block has a `kubernetes` stage, so the `[source]` is read.
pub(super) fn render(
    default: &BlockConfig,
    others: &[(String, BlockConfig)],
    serves_zone: bool,
    file: &str,
) -> String {
    let file = one_line(file);
    let mut text = format!(
        "# clusterdns configuration translated from {file} by `clusterdns import-corefile`.\n# Each key names the Corefile line it comes from.\n"
    );
    let mut findings: Vec<_> = default
        .findings
        .iter()
        .chain(others.iter().flat_map(|(_, b)| &b.findings))
        .collect();
    if !findings.is_empty() {
        text.push_str("#\n# What did not become a key:\n");
        findings.sort_by_key(|f| (f.line, f.column));
        for f in findings {
            let mark = if f.severity == Severity::Unsupported {
                "NOT TRANSLATED: "
            } else {
                ""
            };
            text.push_str(&format!(
                "#   line {}: {mark}{} ({}): {}\n",
                f.line,
                one_line(&f.what),
                f.severity,
                one_line(&f.message)
            ));
        }
    }
    for section in SECTIONS {
        if section == "source" {
            if serves_zone {
                text.push_str("\n[source]\n# No file: the zone comes from the Kubernetes API (in a pod, its service account),\n# as CoreDNS's `kubernetes` plugin reads it.\n");
            }
            continue;
        }
        let entries = of_section(default, section);
        if entries.is_empty() {
            continue;
        }
        if !section.is_empty() {
            text.push_str(&format!("\n[{section}]\n"));
        }
        keys(&mut text, &entries, &file);
    }
    for (name, block) in others {
        text.push_str(&format!(
            "\n[[blocks]]\nname = {}  # the keys of its server blocks\n",
            quoted(name)
        ));
        for section in BLOCK_SECTIONS {
            let entries = of_section(block, section);
            if entries.is_empty() {
                continue;
            }
            if !section.is_empty() {
                text.push_str(&format!("[blocks.{section}]\n"));
            }
            keys(&mut text, &entries, &file);
        }
    }
    text
}

fn of_section<'b>(block: &'b BlockConfig, section: &str) -> Vec<&'b Entry> {
    block
        .entries
        .iter()
        .filter(|e| e.section == section)
        .collect()
}

fn keys(text: &mut String, entries: &[&Entry], file: &str) {
    for e in entries {
        let comment = match (&e.why, e.line) {
            (Some(why), _) => why.clone(),
            (None, line) => format!("{file}:{line}"),
        };
        let comment = one_line(&comment);
        text.push_str(&format!("{} = {}  # {comment}\n", e.key, e.value));
    }
}

/// Text for a TOML comment: a quoted Corefile word may hold a line break, which would
/// otherwise end the comment and put the rest of the word into the config as TOML.
pub(super) fn one_line(text: &str) -> String {
    text.replace(|c: char| c.is_control(), " ")
}

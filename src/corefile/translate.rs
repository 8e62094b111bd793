//! A parsed Corefile to clusterdns TOML. Server blocks are first placed on clusterdns
//! blocks ([`super::servers`]); each clusterdns block then collects the keys its server
//! blocks' directives set ([`BlockConfig`], each key remembering its Corefile line), and
//! every directive or option that set no key as written leaves a [`Finding`] saying
//! what became of it. [`super::render`] writes the TOML.

use std::fmt;

use super::parse::{Corefile, Directive, ServerBlock};
use super::plugins;
use super::render;
use super::servers::{self, Placement};
use super::values::{self, quoted_list};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Built in or deprecated: clusterdns behaves the same without a key.
    Note,
    /// Translated, but clusterdns behaves a little differently; the import goes on.
    Warning,
    /// Cannot be honoured: the import stops unless `--lenient`.
    Unsupported,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Unsupported => "not supported",
        })
    }
}

/// What became of one directive or option that set no key as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The directive (and option) it is about, e.g. `cache > prefetch`.
    pub what: String,
    pub severity: Severity,
    /// What clusterdns does instead, or what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} ({}): {}",
            self.file, self.line, self.column, self.what, self.severity, self.message
        )
    }
}

/// The TOML written and what was noted on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub toml: String,
    pub findings: Vec<Finding>,
}

/// The sections every block shares (written once, at the top level); the others are a
/// block's own.
pub(super) const SHARED: [&str; 6] = ["kubernetes", "source", "health", "ready", "metrics", "log"];

/// One key as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) section: &'static str,
    pub(super) key: String,
    /// TOML text of the value.
    pub(super) value: String,
    /// The Corefile line it comes from; 0 for a key written because a directive is absent.
    pub(super) line: usize,
    pub(super) why: Option<String>,
    /// The server block (its index in the Corefile) that set it.
    origin: usize,
}

/// One clusterdns block's config (the server blocks on its addresses), and what their
/// translation noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockConfig {
    pub(super) entries: Vec<Entry>,
    pub findings: Vec<Finding>,
    file: String,
    /// The server block being translated.
    current: usize,
}

impl BlockConfig {
    fn new(file: &str) -> Self {
        BlockConfig {
            entries: Vec::new(),
            findings: Vec::new(),
            file: file.to_string(),
            current: 0,
        }
    }

    /// Sets a key (a later directive replaces an earlier one's value). Server blocks that
    /// share addresses share one block's keys: a value one of them replaces with another
    /// is a warning at its line.
    pub(super) fn set(&mut self, section: &'static str, key: &str, value: String, line: usize) {
        let old = self
            .entries
            .iter()
            .position(|e| e.section == section && e.key == key);
        if let Some(old) = old.map(|i| self.entries.remove(i))
            && old.origin != self.current
            && old.line != 0
            && line != 0
            && old.value != value
        {
            let name = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            self.warn_at(line, &name, format!(
                "server blocks on the same addresses become one clusterdns block, with one value here: {value} (this line) replaces {} (line {})",
                old.value, old.line));
        }
        self.entries.push(Entry {
            section,
            key: key.to_string(),
            value,
            line,
            why: None,
            origin: self.current,
        });
    }

    /// Sets a key that stands for a directive the Corefile lacks, saying why.
    pub(super) fn set_default(
        &mut self,
        section: &'static str,
        key: &str,
        value: String,
        why: &str,
    ) {
        self.set(section, key, value, 0);
        if let Some(e) = self.entries.last_mut() {
            e.why = Some(why.to_string());
        }
    }

    pub(super) fn has(&self, section: &str, key: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.section == section && e.key == key)
    }

    pub(super) fn find(
        &mut self,
        at: &Directive,
        what: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            file: self.file.clone(),
            line: at.name.line,
            column: at.name.column,
            what: what.into(),
            severity,
            message: message.into(),
        });
    }

    /// A finding about a whole line (a server block, or a merged key).
    pub(super) fn find_line(
        &mut self,
        line: usize,
        what: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            file: self.file.clone(),
            line,
            column: 1,
            what: what.into(),
            severity,
            message: message.into(),
        });
    }

    fn warn_at(&mut self, line: usize, what: &str, message: String) {
        self.find_line(line, what, Severity::Warning, message);
    }

    /// Moves the keys of the shared sections into `default` (the top level): a key it
    /// does not have yet, or has only because a directive was absent there, is taken; a
    /// different value is a finding.
    fn move_shared_into(&mut self, default: &mut BlockConfig) {
        let (shared, own): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| SHARED.contains(&e.section));
        self.entries = own;
        for e in shared {
            let there = default
                .entries
                .iter()
                .position(|d| d.section == e.section && d.key == e.key);
            // The cluster zone is one: a block's `kubernetes` must say what the default
            // block's says, to the option.
            let strict = e.section == "kubernetes"
                && default
                    .entries
                    .iter()
                    .any(|d| d.section == "kubernetes" && d.line != 0);
            let kept = match there {
                Some(i) if default.entries[i].value == e.value || e.line == 0 => continue,
                Some(i) if default.entries[i].line == 0 && !strict => {
                    default.entries[i] = e;
                    continue;
                }
                None if e.line == 0 || !strict => {
                    default.entries.push(e);
                    continue;
                }
                Some(i) if default.entries[i].line == 0 => "CoreDNS's default".to_string(),
                Some(i) => format!(
                    "{} (line {})",
                    default.entries[i].value, default.entries[i].line
                ),
                None => "CoreDNS's default".to_string(),
            };
            let severity = if strict {
                Severity::Unsupported
            } else {
                Severity::Warning
            };
            let message = format!(
                "[{}] is shared by every clusterdns block: {kept} is kept, not {}. Give the server blocks the same value",
                e.section, e.value
            );
            default.find_line(
                e.line,
                format!("{}.{}", e.section, e.key),
                severity,
                message,
            );
        }
    }
}

/// Translates a Corefile; `file` names it in findings.
pub fn translate(corefile: &Corefile, file: &str) -> Translation {
    let placement = servers::place(&corefile.blocks);
    let mut blocks: Vec<BlockConfig> = placement
        .groups
        .iter()
        .map(|g| translate_group(corefile, g, &placement, file))
        .collect();
    let mut default = blocks.remove(placement.default);
    let mut others = Vec::new();
    for (i, mut block) in blocks.into_iter().enumerate() {
        block.move_shared_into(&mut default);
        let g = if i < placement.default { i } else { i + 1 };
        others.push((
            servers::block_name(&corefile.blocks, &placement.groups[g]),
            block,
        ));
    }
    let serves_zone = placement.groups.iter().any(|g| {
        g.members
            .iter()
            .any(|&b| servers::has(&corefile.blocks[b], "kubernetes"))
    });
    let toml = render::render(&default, &others, serves_zone, file);
    let mut findings = default.findings;
    for (_, b) in others {
        findings.extend(b.findings);
    }
    findings.sort_by_key(|f| (f.line, f.column));
    Translation { toml, findings }
}

/// Translates the server blocks placed on one clusterdns block.
fn translate_group(
    corefile: &Corefile,
    group: &servers::Group,
    placement: &Placement,
    file: &str,
) -> BlockConfig {
    let mut out = BlockConfig::new(file);
    let members: Vec<&ServerBlock> = group.members.iter().map(|&b| &corefile.blocks[b]).collect();
    for (&index, block) in group.members.iter().zip(&members) {
        out.current = index;
        translate_server(&mut out, block, group.members.len() > 1);
    }
    for (line, message) in placement.clashes_of(group) {
        out.find_line(line, "server block", Severity::Unsupported, message);
    }
    let (mut chain, why) = servers::chain(&members);
    if chain.is_empty() {
        out.find_line(members[0].line(), "server block", Severity::Note,
            "no plugin here answers a query (CoreDNS would refuse them all): the block's chain is a forward stage without upstreams, which refuses every query");
        chain.push("forward");
    }
    out.set_default("", "chain", quoted_list(&chain), &why);
    absent_directives(&mut out, &members);
    out
}

/// Translates one server block into the keys of its clusterdns block; `shared` when
/// other server blocks listen on the same addresses.
fn translate_server(out: &mut BlockConfig, block: &ServerBlock, shared: bool) {
    let mut port = None;
    let mut zones = Vec::new();
    for key in &block.keys {
        let at = Directive {
            name: key.clone(),
            args: Vec::new(),
            block: None,
        };
        match values::block_key(&key.text) {
            Ok(k) => {
                if port.is_some_and(|p| p != k.port) {
                    out.find(&at, "server block key", Severity::Unsupported,
                        "the keys of one block name different ports: clusterdns answers every port it listens on alike; split the block by hand");
                }
                port = Some(k.port);
                zones.push(k.zone);
            }
            Err(e) => out.find(&at, "server block key", Severity::Unsupported, e),
        }
    }
    let port = port.unwrap_or(53);
    if !has_bind(block) {
        out.set(
            "",
            "listen",
            quoted_list(&servers::wildcard(port)),
            block.line(),
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for d in &block.directives {
        let name = d.name.text.as_str();
        // `forward` may appear once per zone; every other plugin once per block.
        if name != "forward" && seen.contains(&name) {
            out.find(
                d,
                name,
                Severity::Unsupported,
                "given a second time in this block (CoreDNS refuses that too): keep one",
            );
            continue;
        }
        seen.push(name);
        if shared && name == "cache" && !zones.iter().any(|z| z == ".") {
            out.find(d, name, Severity::Warning,
                "clusterdns has one cache per block: with the server blocks on the same addresses, its settings also apply to their zones (and theirs to this one's)");
        }
        plugins::directive(out, d, port, &zones);
    }
}

fn has_bind(block: &ServerBlock) -> bool {
    block.directives.iter().any(|d| d.name.text == "bind")
}

/// What clusterdns would do by default where no server block of a clusterdns block has
/// a directive, set to what CoreDNS does without it.
fn absent_directives(out: &mut BlockConfig, blocks: &[&ServerBlock]) {
    let has = |name: &str| blocks.iter().any(|b| servers::has(b, name));
    for (name, section) in [
        ("health", "health"),
        ("ready", "ready"),
        ("prometheus", "metrics"),
    ] {
        if !has(name) {
            out.set_default(
                section,
                "listen",
                values::quoted(""),
                &format!("no `{name}` in the Corefile: off"),
            );
        }
    }
    if !has("forward") && !has("proxy") {
        out.set_default(
            "forward",
            "upstreams",
            "[]".into(),
            "no `forward` in the Corefile: names outside the cluster zones are refused",
        );
    }
}

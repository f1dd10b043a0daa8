//! `docs/configuration.md` checked against the code, both ways, so that the reference cannot
//! drift (the mechanism is described at the top of that file):
//!
//! - every key the code accepts is found from serde itself: a table given an unknown key is
//!   refused with the list of the keys it accepts (`deny_unknown_fields`), an array of tagged
//!   tables without its tag names the tag, a tag of no variant lists the variants; each accepted
//!   key is probed in turn to find the tables, arrays of tables and maps below it. Every key
//!   found must have a row, and every row must name a key the code accepts;
//! - every row's default (or example) is written into a config file with the rows it needs
//!   (the required keys of its table), which must deserialise; a required key left out must be
//!   refused as missing; for keys outside arrays the whole configuration is resolved, and must
//!   come out the same with the documented default as without the key, and a range written
//!   as `a..=b` must accept both ends and refuse one step past each;
//! - every server flag with an environment variable has a row in the flags table, and every row
//!   names a flag of `openscm server` with that variable.

use std::collections::{BTreeMap, BTreeSet};

use super::{CommonArgs, FileConfig, resolve};

/// The reference, read at build time (a change to it rebuilds the tests).
const REFERENCE: &str = include_str!("../../../../docs/configuration.md");

/// The key no table knows, used to make serde list the keys it does know.
const PROBE: &str = "zz_probe";

/// The name a map's key gets in the files the test writes.
const ANY_NAME: &str = "NAME";

/// One step into the configuration: a key of a table, an entry of an array of tables (of one
/// variant when the entries are tagged), or any key of a map.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Entry(Option<String>),
    Any,
}

type KeyPath = Vec<Step>;

/// How the reference writes a key: `tls.mode`, `push_targets[nginx].cert_path`,
/// `issuers[].dns01.server`, `brands.<BRAND>`.
fn show(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Entry(None) => out.push_str("[]"),
            Step::Entry(Some(v)) => out.push_str(&format!("[{v}]")),
            Step::Any => out.push_str(".<*>"),
        }
    }
    out
}

/// A key as the reference writes it: each `[a,b]` is a set of variants (`[]`: every variant, or
/// the untagged entries); `<...>` any key of a map.
fn parse_key(text: &str) -> Vec<(String, Option<Vec<String>>)> {
    // (segment, the variants after it when it is an array)
    let mut out = Vec::new();
    for part in text.split('.') {
        match part.split_once('[') {
            Some((name, rest)) => {
                let inner = rest.trim_end_matches(']');
                let variants = inner
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                out.push((name.to_owned(), Some(variants)));
            }
            None => out.push((part.to_owned(), None)),
        }
    }
    out
}

/// A value in a config file the test writes: TOML text as the reference gives it, or a table
/// or an array built here. Written inline (`{ a = 1, b = [ { c = "x" } ] }`).
#[derive(Clone, Debug)]
enum Node {
    Raw(String),
    Table(BTreeMap<String, Node>),
    Array(Vec<Node>),
}

fn emit(node: &Node) -> String {
    match node {
        Node::Raw(text) => text.clone(),
        Node::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k} = {}", emit(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        Node::Array(items) => {
            let items: Vec<String> = items.iter().map(emit).collect();
            format!("[ {} ]", items.join(", "))
        }
    }
}

/// A whole file: the root table's keys, one a line.
fn document(root: &BTreeMap<String, Node>) -> String {
    root.iter()
        .map(|(k, v)| format!("{k} = {}\n", emit(v)))
        .collect()
}

/// The name a step has in a table.
fn key_name(step: &Step) -> &str {
    match step {
        Step::Key(k) => k,
        Step::Any => ANY_NAME,
        Step::Entry(_) => "",
    }
}

/// Puts `value` at `path` into `table`, making the tables and arrays on the way; an entry of a
/// tagged array gets its tag (`tags`: the array's path and the tag's name).
fn insert(
    table: &mut BTreeMap<String, Node>,
    prefix: &[Step],
    path: &[Step],
    value: Node,
    tags: &BTreeMap<KeyPath, String>,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let name = key_name(first).to_owned();
    let mut here = prefix.to_vec();
    here.push(first.clone());
    match rest.first() {
        None => {
            table.insert(name, value);
        }
        Some(Step::Entry(variant)) => {
            let array = table
                .entry(name)
                .or_insert_with(|| Node::Array(vec![Node::Table(BTreeMap::new())]));
            if !matches!(array, Node::Array(items) if matches!(items.first(), Some(Node::Table(_))))
            {
                *array = Node::Array(vec![Node::Table(BTreeMap::new())]);
            }
            let Node::Array(items) = array else {
                unreachable!()
            };
            let Some(Node::Table(entry)) = items.first_mut() else {
                unreachable!()
            };
            let mut inner = here.clone();
            inner.push(Step::Entry(variant.clone()));
            if let (Some(v), Some(tag)) = (variant, tags.get(&here)) {
                entry.insert(tag.clone(), Node::Raw(format!("{v:?}")));
            }
            insert(entry, &inner, &rest[1..], value, tags);
        }
        Some(_) => {
            let inner = table
                .entry(name)
                .or_insert_with(|| Node::Table(BTreeMap::new()));
            if !matches!(inner, Node::Table(_)) {
                *inner = Node::Table(BTreeMap::new());
            }
            let Node::Table(inner) = inner else {
                unreachable!()
            };
            insert(inner, &here, rest, value, tags);
        }
    }
}

/// Takes the value at `path` out of `table`, if it is there.
fn remove(table: &mut BTreeMap<String, Node>, path: &[Step]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let name = key_name(first);
    match (rest.first(), table.get_mut(name)) {
        (None, _) => {
            table.remove(name);
        }
        (Some(Step::Entry(_)), Some(Node::Array(items))) => {
            if let Some(Node::Table(entry)) = items.first_mut() {
                remove(entry, &rest[1..]);
            }
        }
        (Some(_), Some(Node::Table(inner))) => remove(inner, rest),
        _ => {}
    }
}

/// Deserialises a file the way the server reads one; the error is the key path serde was at and
/// its message.
fn deserialise(text: &str) -> Result<FileConfig, (String, String)> {
    let de =
        toml::de::Deserializer::parse(text).map_err(|e| (String::new(), e.message().to_owned()))?;
    serde_path_to_error::deserialize(de)
        .map_err(|e| (e.path().to_string(), e.inner().message().to_owned()))
}

/// The names in backquotes after "expected" in a serde message (`expected one of `a`, `b``).
fn expected(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// What serde makes of the value at a path.
enum Shape {
    /// A table of these keys.
    Struct(Vec<String>),
    /// Tables tagged by this key, of these variants.
    Tagged(String, Vec<String>),
    /// Any key.
    Map,
    /// Not a table.
    NotTable,
}

/// What the code knows: every key (leaves), the tables and arrays between, the tags of tagged
/// arrays, and the variants of enumerated values.
#[derive(Default)]
struct Known {
    leaves: BTreeSet<KeyPath>,
    containers: BTreeSet<KeyPath>,
    tags: BTreeMap<KeyPath, String>,
    variants: BTreeMap<KeyPath, Vec<String>>,
}

impl Known {
    /// Serde's verdict on a file holding `value` at `path`.
    fn attempt(&self, path: &[Step], value: &str) -> Result<FileConfig, (String, String)> {
        let mut root = BTreeMap::new();
        insert(
            &mut root,
            &[],
            path,
            Node::Raw(value.to_owned()),
            &self.tags,
        );
        deserialise(&document(&root))
    }

    /// What the value at `at` is, from serde's answers to a table holding only [`PROBE`].
    fn shape(&self, at: &[Step]) -> Shape {
        let mut probe = at.to_vec();
        probe.push(Step::Key(PROBE.into()));
        match self.attempt(&probe, "1") {
            Err((_, m)) if m.starts_with(&format!("unknown field `{PROBE}`")) => {
                Shape::Struct(expected(&m))
            }
            Err((_, m)) if m.starts_with("missing field `") => {
                let tag = m.split('`').nth(1).unwrap_or_default().to_owned();
                let mut tagged = at.to_vec();
                tagged.push(Step::Key(tag.clone()));
                match self.attempt(&tagged, &format!("{PROBE:?}")) {
                    Err((_, m)) if m.starts_with(&format!("unknown variant `{PROBE}`")) => {
                        Shape::Tagged(tag, expected(&m))
                    }
                    other => panic!(
                        "{}: missing {tag}, but no variants: {:?}",
                        show(at),
                        other.err()
                    ),
                }
            }
            // A map whose values are not integers: serde got past the key.
            Err((path, _)) if path.ends_with(PROBE) => Shape::Map,
            Ok(_) => Shape::Map,
            Err(_) => Shape::NotTable,
        }
    }

    /// Walks the table at `at` (a struct, or one variant of tagged entries), recording every key.
    fn walk_struct(&mut self, at: &[Step], fields: Vec<String>) {
        for field in fields {
            let mut path = at.to_vec();
            path.push(Step::Key(field));
            self.walk_value(path);
        }
    }

    /// Records the value at `path`: a table, an array of tables, a map, or a key.
    fn walk_value(&mut self, path: KeyPath) {
        match self.shape(&path) {
            Shape::Struct(fields) => {
                self.containers.insert(path.clone());
                self.walk_struct(&path, fields);
                return;
            }
            Shape::Map => {
                self.containers.insert(path.clone());
                let mut any = path;
                any.push(Step::Any);
                self.walk_value(any);
                return;
            }
            Shape::Tagged(..) => panic!("{}: a tagged table outside an array", show(&path)),
            Shape::NotTable => {}
        }
        let mut entry = path.clone();
        entry.push(Step::Entry(None));
        match self.shape(&entry) {
            Shape::Struct(fields) => {
                self.containers.insert(path.clone());
                self.walk_struct(&entry, fields);
            }
            Shape::Tagged(tag, variants) => {
                self.containers.insert(path.clone());
                self.tags.insert(path.clone(), tag.clone());
                for v in &variants {
                    let mut at = path.clone();
                    at.push(Step::Entry(Some(v.clone())));
                    let Shape::Struct(fields) = self.shape(&at) else {
                        panic!("{}: not a table", show(&at));
                    };
                    let mut tag_path = at.clone();
                    tag_path.push(Step::Key(tag.clone()));
                    self.leaves.insert(tag_path.clone());
                    self.variants.insert(tag_path, variants.clone());
                    self.walk_struct(&at, fields);
                }
            }
            Shape::Map | Shape::NotTable => {
                // A key: its variants, when serde knows them.
                if let Err((_, m)) = self.attempt(&path, &format!("{PROBE:?}"))
                    && m.starts_with(&format!("unknown variant `{PROBE}`"))
                {
                    self.variants.insert(path.clone(), expected(&m));
                }
                self.leaves.insert(path);
            }
        }
    }

    /// Every key the code accepts, found from serde's answers.
    fn discover() -> Self {
        let mut known = Self::default();
        let Shape::Struct(fields) = known.shape(&[]) else {
            panic!("the config file is not a table of known keys");
        };
        known.walk_struct(&[], fields);
        known
    }

    /// The concrete paths a key of the reference stands for (one per variant for `[]` on a
    /// tagged array), or why it names nothing.
    fn expand(&self, key: &str) -> Result<Vec<KeyPath>, String> {
        let mut paths: Vec<KeyPath> = vec![Vec::new()];
        for (name, entries) in parse_key(key) {
            for p in &mut paths {
                if name.starts_with('<') && name.ends_with('>') {
                    p.push(Step::Any);
                } else {
                    p.push(Step::Key(name.clone()));
                }
            }
            let Some(listed) = entries else { continue };
            let mut next = Vec::new();
            for p in paths {
                match self.tags.get(&p) {
                    None if listed.is_empty() => {
                        let mut q = p.clone();
                        q.push(Step::Entry(None));
                        next.push(q);
                    }
                    None => return Err(format!("{key}: {} has no variants", show(&p))),
                    Some(_) => {
                        let all: Vec<String> = self
                            .variants
                            .iter()
                            .filter(|(k, _)| k.starts_with(&p) && k.len() == p.len() + 2)
                            .flat_map(|(_, v)| v.clone())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect();
                        let chosen = if listed.is_empty() {
                            all.clone()
                        } else {
                            listed.clone()
                        };
                        for v in chosen {
                            if !all.contains(&v) {
                                return Err(format!("{key}: {} has no variant {v:?}", show(&p)));
                            }
                            let mut q = p.clone();
                            q.push(Step::Entry(Some(v)));
                            next.push(q);
                        }
                    }
                }
            }
            paths = next;
        }
        Ok(paths)
    }
}

/// A row of the reference's key tables.
#[derive(Debug)]
struct Row {
    key: String,
    /// The default as TOML, or else an example value.
    value: String,
    /// Whether `value` is the default (else an example).
    is_default: bool,
    required: bool,
    /// `a..=b` when the range column says just that.
    range: Option<(String, String)>,
    /// Every value in backquotes in the range column.
    range_values: Vec<String>,
}

/// The cells of a Markdown table row (`\|` inside a cell is a `|`).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_owned()).collect()
}

/// The text of each `code span` of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The rows of every table whose header is `header`, each as its cells.
fn tables(header: &[&str]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut lines = REFERENCE.lines().peekable();
    while let Some(line) = lines.next() {
        let head = cells(line);
        if !line.trim_start().starts_with('|')
            || head.iter().map(|c| c.to_lowercase()).collect::<Vec<_>>() != header
        {
            continue;
        }
        lines.next(); // the separator
        while let Some(row) = lines.next_if(|l| l.trim_start().starts_with('|')) {
            rows.push(cells(row));
        }
    }
    rows
}

/// The key rows of the reference.
fn rows() -> Vec<Row> {
    let rows = tables(&["key", "default", "range", "meaning"]);
    assert!(!rows.is_empty(), "docs/configuration.md has no key tables");
    rows.into_iter()
        .map(|cells| {
            let [key, default, range, _meaning] = &cells[..] else {
                panic!("a row of four cells: {cells:?}");
            };
            let key = match &code_spans(key)[..] {
                [k] if key.starts_with('`') && key.ends_with('`') => k.clone(),
                _ => panic!("the key cell is one `key`: {key:?}"),
            };
            let (value, is_default) = if default.starts_with('`') {
                (code_spans(default)[0].clone(), true)
            } else {
                let example = default
                    .split_once("e.g. `")
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(v, _)| v.to_owned());
                let Some(example) = example else {
                    panic!("{key}: the default cell gives no default and no example (e.g. `...`)");
                };
                (example, false)
            };
            let spans = code_spans(range);
            let range_bounds = match &spans[..] {
                [r] if range.trim() == format!("`{r}`") => r
                    .split_once("..=")
                    .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned())),
                _ => None,
            };
            Row {
                required: default.starts_with("required"),
                key,
                value,
                is_default,
                range: range_bounds,
                range_values: spans
                    .iter()
                    .map(|s| s.trim_matches('"').to_owned())
                    .collect(),
            }
        })
        .collect()
}

/// Settings that a key's checks need beside it (a range of `tls.reload_seconds` means something
/// only in `files` mode): reference key, then (key, TOML value) pairs.
const CONTEXT: &[(&str, &[(&str, &str)])] = &[
    (
        "tls.reload_seconds",
        &[
            ("tls.mode", "\"files\""),
            ("tls.cert_file", "\"/etc/openscm/tls/chain.pem\""),
            ("tls.key_file", "\"/etc/openscm/tls/key.pem\""),
        ],
    ),
    ("tls.validity_days", &[("tls.mode", "\"builtin\"")]),
    ("leaf_validity_days", &[("max_validity_days", "3650")]),
    ("max_validity_days", &[("leaf_validity_days", "1")]),
];

/// The reference and the code, side by side.
struct Check {
    known: Known,
    rows: Vec<Row>,
    /// Each row's concrete paths.
    paths: Vec<Vec<KeyPath>>,
}

impl Check {
    fn new() -> Self {
        let known = Known::discover();
        let rows = rows();
        let paths = rows
            .iter()
            .map(|r| known.expand(&r.key).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        Self { known, rows, paths }
    }

    /// The value a row gives `path`: its own, except that a tag is the variant of its entry
    /// (`push_targets[exec].kind` is `"exec"`).
    fn value_at(&self, path: &[Step], value: &str) -> String {
        if let [array @ .., Step::Entry(Some(variant)), Step::Key(key)] = path
            && self.known.tags.get(array) == Some(key)
        {
            return format!("{variant:?}");
        }
        value.to_owned()
    }

    /// A file with `value` at `target` (or without `target`, `None`), the required keys of every
    /// table on the way, and `extra`.
    fn file(&self, target: &[Step], value: Option<&str>, extra: &[(KeyPath, String)]) -> String {
        let mut root = BTreeMap::new();
        for (row, paths) in self.rows.iter().zip(&self.paths) {
            if !row.required {
                continue;
            }
            for p in paths {
                let Some((_, parent)) = p.split_last() else {
                    continue;
                };
                // The required keys of each table on the way to the target, unless the target
                // goes through them.
                if target.starts_with(parent) && !target.starts_with(p) {
                    let value = self.value_at(p, &row.value);
                    insert(&mut root, &[], p, Node::Raw(value), &self.known.tags);
                }
            }
        }
        for (p, v) in extra {
            insert(&mut root, &[], p, Node::Raw(v.clone()), &self.known.tags);
        }
        match value {
            Some(v) => {
                let value = self.value_at(target, v);
                insert(&mut root, &[], target, Node::Raw(value), &self.known.tags);
            }
            None => {
                // A tag is put in by every entry on the way: take it out again.
                insert(
                    &mut root,
                    &[],
                    target,
                    Node::Raw("0".into()),
                    &self.known.tags,
                );
                remove(&mut root, target);
            }
        }
        document(&root)
    }

    /// The configuration `text` resolves to, as the server would start with it.
    fn resolved(text: &str) -> Result<String, String> {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("openscm.toml");
        std::fs::write(&file, text).unwrap();
        let common = CommonArgs {
            config: Some(file),
            data_dir: Some("/var/lib/openscm".into()),
            ..CommonArgs::default()
        };
        // How the store's place was chosen (the config file's own path among it) is not a
        // setting: compared without it.
        resolve(&common, None)
            .map(|mut c| {
                c.origin = crate::store_guard::StoreOrigin::default();
                format!("{c:?}")
            })
            .map_err(|e| format!("{e:#}"))
    }

    fn context(&self, key: &str) -> Vec<(KeyPath, String)> {
        CONTEXT
            .iter()
            .filter(|(k, _)| *k == key)
            .flat_map(|(_, pairs)| pairs.iter())
            .map(|(k, v)| {
                let p = self.known.expand(k).unwrap().remove(0);
                (p, (*v).to_owned())
            })
            .collect()
    }
}

/// The reference lists every key the code accepts, and nothing else.
#[test]
fn the_reference_lists_every_key_and_only_keys_that_exist() {
    let check = Check::new();
    let documented: BTreeSet<&KeyPath> = check.paths.iter().flatten().collect();
    let missing: Vec<String> = check
        .known
        .leaves
        .iter()
        .filter(|k| !documented.contains(k))
        .map(|k| show(k))
        .collect();
    let unknown: Vec<String> = documented
        .iter()
        .filter(|k| !check.known.leaves.contains(**k) && !check.known.containers.contains(**k))
        .map(|k| show(k))
        .collect();
    let mut seen = BTreeSet::new();
    let twice: Vec<String> = check
        .paths
        .iter()
        .flatten()
        .filter(|p| !seen.insert(*p))
        .map(|p| show(p))
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty() && twice.is_empty(),
        "docs/configuration.md is out of date.\nKeys the code accepts without a row: {missing:#?}\n\
         Rows naming no key the code accepts: {unknown:#?}\nKeys with two rows: {twice:#?}"
    );
}

/// Every row's value is accepted where the reference puts it, and a required key is required.
#[test]
fn every_documented_value_is_accepted_and_required_keys_are_required() {
    let check = Check::new();
    let mut failures = Vec::new();
    for (row, paths) in check.rows.iter().zip(&check.paths) {
        for path in paths {
            let text = check.file(path, Some(&row.value), &[]);
            if let Err((at, message)) = deserialise(&text) {
                failures.push(format!(
                    "{}: {} = {} is refused ({at}: {message}) in\n{text}",
                    row.key,
                    show(path),
                    row.value
                ));
            }
            if row.required {
                let text = check.file(path, None, &[]);
                let name = key_name(path.last().unwrap());
                match deserialise(&text) {
                    Err((_, m)) if m.starts_with(&format!("missing field `{name}`")) => {}
                    other => failures.push(format!(
                        "{}: marked required, but {} left out gives {:?} in\n{text}",
                        row.key,
                        show(path),
                        other.err()
                    )),
                }
            }
            if let Some(variants) = check.known.variants.get(path) {
                let mut documented = row.range_values.clone();
                let mut known = variants.clone();
                documented.sort();
                known.sort();
                if documented != known {
                    failures.push(format!(
                        "{}: the range lists {documented:?}, the code takes {known:?}",
                        row.key
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Outside arrays, a documented default changes nothing, and a documented range is the range
/// `openscm server` enforces.
#[test]
fn documented_defaults_and_ranges_are_what_the_server_resolves() {
    let check = Check::new();
    let mut failures = Vec::new();
    for (row, paths) in check.rows.iter().zip(&check.paths) {
        let [path] = &paths[..] else { continue };
        if !path.iter().all(|s| matches!(s, Step::Key(_))) {
            continue;
        }
        let context = check.context(&row.key);
        let without = Check::resolved(&check.file(&[], None, &context));
        let resolved = |value: &str| Check::resolved(&check.file(path, Some(value), &context));
        if row.is_default {
            match (&without, resolved(&row.value)) {
                (Ok(a), Ok(b)) if *a == b => {}
                (Ok(_), Ok(_)) => failures.push(format!(
                    "{}: the documented default {} is not the default",
                    row.key, row.value
                )),
                (a, b) => failures.push(format!(
                    "{}: cannot resolve: without it {a:?}, with {} {b:?}",
                    row.key, row.value
                )),
            }
        }
        let Some((low, high)) = &row.range else {
            continue;
        };
        // One step past a bound: 1 for integers, one unit of the last decimal for fractions.
        let step = |bound: &str, up: bool| -> Option<String> {
            if let Some((_, decimals)) = bound.split_once('.') {
                let v: f64 = bound.parse().unwrap();
                let unit = 10f64.powi(-i32::try_from(decimals.len()).unwrap());
                let past = if up { v + unit } else { v - unit };
                Some(format!("{past:.*}", decimals.len()))
            } else {
                let v: u64 = bound.parse().unwrap();
                if up {
                    Some((v + 1).to_string())
                } else {
                    v.checked_sub(1).map(|v| v.to_string())
                }
            }
        };
        for bound in [low, high] {
            if let Err(e) = resolved(bound) {
                failures.push(format!("{}: {bound} is in the range, but {e}", row.key));
            }
        }
        for outside in [step(low, false), step(high, true)].into_iter().flatten() {
            match resolved(&outside) {
                Err(e) if e.contains(&row.key) => {}
                other => failures.push(format!(
                    "{}: {outside} is out of the range, but resolving gives {:?}",
                    row.key,
                    other.map(|_| "success")
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The flags table names `openscm server`'s flags with their environment variables, all of them.
#[test]
fn the_flags_table_lists_every_server_flag_with_its_variable() {
    use clap::CommandFactory;
    let check = Check::new();
    let command = crate::Cli::command();
    let server = command
        .get_subcommands()
        .find(|c| c.get_name() == "server")
        .unwrap();
    let flags: BTreeMap<String, String> = server
        .get_arguments()
        .filter_map(|a| {
            let env = a.get_env()?.to_str()?.to_owned();
            Some((format!("--{}", a.get_long()?), env))
        })
        .collect();
    let mut documented = BTreeMap::new();
    let mut failures = Vec::new();
    for cells in tables(&["key", "flag", "environment"]) {
        let [key, flag, env] = &cells[..] else {
            panic!("a row of three cells: {cells:?}");
        };
        let (flags_given, envs_given) = (code_spans(flag), code_spans(env));
        let (Some(flag), Some(env)) = (flags_given.first(), envs_given.first()) else {
            panic!("a flag and a variable in backquotes: {cells:?}");
        };
        if let Some(key) = code_spans(key).first() {
            let known = check.known.expand(key).is_ok_and(|paths| {
                paths
                    .iter()
                    .all(|p| check.known.leaves.contains(p) || check.known.containers.contains(p))
            });
            if !known {
                failures.push(format!("{flag}: no key {key}"));
            }
        }
        documented.insert(flag.clone(), env.clone());
    }
    if documented != flags {
        failures.push(format!(
            "the table says {documented:#?}\nopenscm server has {flags:#?}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

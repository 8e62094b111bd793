//! The shape kubectl prints a `List` in, found by lines, so that a large dump can be
//! read one item at a time.

/// A block-style `kind: List` document as kubectl prints it: `items:` at the left margin,
/// each item starting with `- ` there too.
pub(super) struct KubectlList<'a> {
    /// The document without its items (so `kind: List` is still checked), each item
    /// line left empty.
    pub header: String,
    /// Each item's text (a one-element YAML sequence) and the line before it starts.
    pub items: Vec<(&'a str, usize)>,
}

impl<'a> KubectlList<'a> {
    pub fn split(text: &'a str) -> Option<KubectlList<'a>> {
        let mut header = String::new();
        let mut items = Vec::new();
        let mut in_items = false;
        let mut current: Option<(usize, usize)> = None; // (byte start, line before)
        let mut offset = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let at_margin = !line.starts_with([' ', '\t', '\n', '\r', '#']);
            if line.starts_with("---") || line.starts_with("...") {
                return None; // several documents: the general path handles them
            }
            if in_items && at_margin && line.starts_with("- ") {
                if let Some((start, l)) = current.take() {
                    items.push((&text[start..offset], l));
                }
                current = Some((offset, n));
            } else if in_items && at_margin {
                if let Some((start, l)) = current.take() {
                    items.push((&text[start..offset], l));
                }
                in_items = false;
            }
            if in_items {
                // Each item line leaves an empty line in the header, so that a line of
                // the header is the same line of the file (errors there are reported
                // at their true place).
                header.push('\n');
            } else if line.trim_end() == "items:" {
                in_items = true;
                header.push_str("items: []\n");
            } else {
                header.push_str(line);
            }
            offset += line.len();
        }
        if let Some((start, l)) = current.take() {
            items.push((&text[start..], l));
        }
        (!items.is_empty()).then_some(KubectlList { header, items })
    }
}

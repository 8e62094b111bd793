//! Parse errors of a cluster file at their place in the file: serde_yaml counts from the
//! start of the text it was given, which for a kubectl List is one item.

use std::path::Path;

use super::FileError;

/// A parse error at its place in the file. `parsed` is the text given to the parser,
/// which starts after `line_offset` lines of the file.
pub(super) fn syntax(
    path: &Path,
    e: &serde_yaml::Error,
    parsed: &str,
    line_offset: usize,
) -> FileError {
    let (mut line, mut column) = e
        .location()
        .map(|l| (l.line() + line_offset, l.column()))
        .unwrap_or((0, 0));
    let (mut reason, context) = file_positions(&e.to_string(), line_offset);
    // Reaching the end of the text inside a bracket or a block: the end is not where the
    // mistake is; where the unclosed construct began is.
    let at_end = e
        .location()
        .is_some_and(|l| l.index() >= parsed.trim_end().len());
    match (at_end, context) {
        (true, Some((l, c))) => {
            (line, column) = (l, c);
            reason = format!("{}, which is never closed", strip_context(&reason));
        }
        (true, None) => {
            // Just after the last character, rather than on a line past the end.
            let content = parsed.trim_end();
            let start = content.rfind('\n').map_or(0, |i| i + 1);
            line = content.matches('\n').count() + 1 + line_offset;
            column = content[start..].chars().count() + 1;
        }
        _ => {}
    }
    FileError::Syntax {
        path: path.to_owned(),
        line,
        column,
        reason,
    }
}

/// serde_yaml writes positions relative to the text it was given into its message: the
/// first (where the error is, printed in front by us) is dropped; the others (e.g. where
/// the unclosed sequence began) are moved to their line in the file. Returns the message
/// and the first of those others.
fn file_positions(message: &str, line_offset: usize) -> (String, Option<(usize, usize)>) {
    const AT: &str = " at line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    let mut first = true;
    let mut context = None;
    while let Some(i) = rest.find(AT) {
        out.push_str(&rest[..i]);
        let tail = &rest[i + AT.len()..];
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let Ok(line) = tail[..digits].parse::<usize>() else {
            out.push_str(AT);
            rest = tail;
            continue;
        };
        let after = &tail[digits..];
        let column = after.strip_prefix(" column ").map(|c| {
            let n = c.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(c.len());
            &c[..n]
        });
        let consumed = digits + column.map_or(0, |c| " column ".len() + c.len());
        if !first {
            let line = line + line_offset;
            out.push_str(&format!("{AT}{line}"));
            if let Some(c) = column {
                out.push_str(&format!(" column {c}"));
            }
            context.get_or_insert((line, column.and_then(|c| c.parse().ok()).unwrap_or(1)));
        }
        first = false;
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    (out, context)
}

/// The message without the first position left in it (the one now printed in front).
fn strip_context(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_in_messages_are_moved_to_the_file() {
        let (message, context) = file_positions(
            "did not find expected ',' at line 3 column 1, while parsing a flow sequence at line 2 column 10",
            100,
        );
        assert_eq!(
            message,
            "did not find expected ',', while parsing a flow sequence at line 102 column 10"
        );
        assert_eq!(context, Some((102, 10)));
        assert_eq!(
            file_positions("no position here", 5),
            ("no position here".to_owned(), None)
        );
    }
}

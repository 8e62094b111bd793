//! Corefile tokens, as CoreDNS's Caddyfile lexer cuts them: words split by white space,
//! `"…"` and `` `…` `` quoting (a quoted token may span lines), `#` comments to the end of
//! the line, and `{$VAR}` environment placeholders replaced inside each token. Every
//! token keeps its line and column, so every later error can name them.

use super::CorefileError;

/// One token and where it starts (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub line: usize,
    pub column: usize,
    /// Written in quotes: never a brace, whatever it holds.
    pub quoted: bool,
}

impl Token {
    /// Whether this is the `{` that opens a block (a quoted "{" is a word).
    pub fn is_open(&self) -> bool {
        !self.quoted && self.text == "{"
    }
    pub fn is_close(&self) -> bool {
        !self.quoted && self.text == "}"
    }
}

/// Cuts `text` into tokens, replacing `{$VAR}` (and CoreDNS's `{%VAR%}`) with what `env`
/// gives. An unset variable is an error rather than CoreDNS's empty string: an import
/// that silently lost an address would be worse than one that stops.
pub fn tokens(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Token>, CorefileError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (1, 0);
    // The token being read, with its start and whether it is quoted.
    let mut current: Option<(String, usize, usize, bool)> = None;
    let mut quote: Option<(char, usize, usize)> = None;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        column += 1;
        let at = (line, column);
        if c == '\n' {
            line += 1;
            column = 0;
        }
        if let Some((q, _, _)) = quote {
            let word = &mut current.as_mut().expect("a quote is inside a token").0;
            if escaped {
                // `\"` is a quote; any other backslash stays as written.
                if c != q {
                    word.push('\\');
                }
                word.push(c);
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            } else {
                word.push(c);
            }
            continue;
        }
        if c.is_whitespace() {
            if let Some(t) = current.take() {
                out.push(finish(t, env)?);
            }
            continue;
        }
        if c == '#' && current.is_none() {
            // A comment runs to the end of the line; the newline itself ends nothing.
            for n in chars.by_ref() {
                if n == '\n' {
                    line += 1;
                    column = 0;
                    break;
                }
            }
            continue;
        }
        let t = current.get_or_insert_with(|| (String::new(), at.0, at.1, false));
        if (c == '"' || c == '`') && t.0.is_empty() {
            t.3 = true;
            quote = Some((c, at.0, at.1));
            continue;
        }
        t.0.push(c);
    }
    if let Some((_, l, c)) = quote {
        return Err(CorefileError::at(l, c, "this quote is never closed"));
    }
    if let Some(t) = current.take() {
        out.push(finish(t, env)?);
    }
    Ok(out)
}

fn finish(
    (text, line, column, quoted): (String, usize, usize, bool),
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Token, CorefileError> {
    Ok(Token {
        text: substitute(&text, env).map_err(|r| CorefileError::at(line, column, r))?,
        line,
        column,
        quoted,
    })
}

/// Replaces each `{$NAME}` and `{%NAME%}` in a token.
fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{$").or_else(|| rest.find("{%")) {
        let windows = rest[start..].starts_with("{%");
        let close = if windows { "%}" } else { "}" };
        let Some(len) = rest[start + 2..].find(close) else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match env(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "environment variable {name} is not set (CoreDNS would put an empty string here): set it, or write the value in"
                ));
            }
        }
        rest = &rest[start + 2 + len + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn words(text: &str) -> Vec<(String, usize, usize)> {
        tokens(text, &no_env)
            .unwrap()
            .into_iter()
            .map(|t| (t.text, t.line, t.column))
            .collect()
    }

    #[test]
    fn words_keep_their_line_and_column() {
        assert_eq!(
            words(".:53 {\n    cache 30\n}\n"),
            [
                (".:53".into(), 1, 1),
                ("{".into(), 1, 6),
                ("cache".into(), 2, 5),
                ("30".into(), 2, 11),
                ("}".into(), 3, 1),
            ]
        );
    }

    #[test]
    fn comments_run_to_the_end_of_the_line() {
        assert_eq!(
            words("# top\nerrors # why\nlog#not-a-comment\n"),
            [("errors".into(), 2, 1), ("log#not-a-comment".into(), 3, 1)]
        );
    }

    #[test]
    fn quotes_hold_spaces_braces_and_escaped_quotes() {
        let t = tokens("rewrite \"a b\" `{` \"say \\\"hi\\\"\"", &no_env).unwrap();
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["rewrite", "a b", "{", "say \"hi\""]);
        assert!(!t[2].is_open(), "a quoted brace is a word");
        assert_eq!((t[3].line, t[3].column), (1, 19));
    }

    #[test]
    fn an_unclosed_quote_names_where_it_opened() {
        let err = tokens("log\nforward . \"1.2.3.4\n", &no_env).unwrap_err();
        assert_eq!((err.line, err.column), (2, 11));
    }

    #[test]
    fn environment_placeholders_are_replaced_or_refused() {
        let env = |name: &str| (name == "UPSTREAM").then(|| "10.0.0.1".to_string());
        let t = tokens("forward . {$UPSTREAM}:53 {%UPSTREAM%}", &env).unwrap();
        assert_eq!(t[2].text, "10.0.0.1:53");
        assert_eq!(t[3].text, "10.0.0.1");
        let err = tokens("\n  forward . {$NOPE}", &env).unwrap_err();
        assert_eq!((err.line, err.column), (2, 13));
        assert!(err.reason.contains("NOPE is not set"), "{}", err.reason);
    }
}

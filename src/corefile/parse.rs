//! The Corefile's shape: server blocks (keys such as `.:53`, then directives), each
//! directive a name, its arguments on the same line, and an optional `{ … }` block of
//! sub-directives, which may nest again. What the directives mean is `translate`'s job.

use super::CorefileError;
use super::lexer::Token;

/// A whole Corefile: its server blocks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corefile {
    pub blocks: Vec<ServerBlock>,
}

/// `KEYS { DIRECTIVES }`: which zones and ports a server answers, and its plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBlock {
    /// The keys as written (`.:53`, `dns://example.org`, `10.0.0.0/8:5353`); commas gone.
    pub keys: Vec<Token>,
    pub directives: Vec<Directive>,
}

impl ServerBlock {
    /// Where the block starts: its first key.
    pub fn line(&self) -> usize {
        self.keys[0].line
    }
}

/// `name args… [{ sub-directives }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: Token,
    pub args: Vec<Token>,
    /// The `{ … }` after the arguments, if any (empty when written as `{}`).
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    pub fn line(&self) -> usize {
        self.name.line
    }
    /// The sub-directives (none without a block).
    pub fn options(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or_default()
    }
}

/// Parses the tokens of a Corefile. `import` and snippets (`(name) { … }`) are refused:
/// the import tool reads one file, and what an import pulls in is not in it.
pub fn parse(tokens: &[Token]) -> Result<Corefile, CorefileError> {
    let mut p = Parser { tokens, at: 0 };
    let mut blocks = Vec::new();
    while p.at < tokens.len() {
        blocks.push(p.server_block(blocks.is_empty())?);
    }
    if blocks.is_empty() {
        return Err(CorefileError::at(
            1,
            1,
            "the Corefile holds no server block",
        ));
    }
    Ok(Corefile { blocks })
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn server_block(&mut self, first: bool) -> Result<ServerBlock, CorefileError> {
        let start = &self.tokens[self.at];
        if start.is_open() || start.is_close() {
            return Err(CorefileError::at(
                start.line,
                start.column,
                format!(
                    "{:?} where a server block's keys (such as .:53) belong",
                    start.text
                ),
            ));
        }
        if start.text.starts_with('(') && start.text.ends_with(')') {
            return Err(CorefileError::at(
                start.line,
                start.column,
                format!(
                    "snippet {} is not supported: write its directives into each block that imports it",
                    start.text
                ),
            ));
        }
        // Keys: on the first line, and on the next ones while a key ends with a comma.
        let mut keys = Vec::new();
        let mut line = start.line;
        while let Some(t) = self.peek() {
            if t.is_open() || t.is_close() || t.line != line {
                break;
            }
            let t = t.clone();
            self.at += 1;
            let more = t.text.ends_with(',');
            let text = t.text.trim_end_matches(',');
            for part in text.split(',').filter(|p| !p.is_empty()) {
                keys.push(Token {
                    text: part.to_string(),
                    ..t.clone()
                });
            }
            if more && let Some(next) = self.peek() {
                line = next.line;
            }
        }
        if keys.is_empty() {
            return Err(CorefileError::at(
                start.line,
                start.column,
                "a server block needs a key such as .:53 before its {",
            ));
        }
        let directives = match self.peek() {
            Some(t) if t.is_open() => {
                let open = t.clone();
                self.at += 1;
                self.block_body(&open)?
            }
            // Caddy's one exception: a lone server block may leave out its braces.
            _ if first => self.directives_until_end()?,
            Some(t) => {
                return Err(CorefileError::at(
                    t.line,
                    t.column,
                    "expected { after the server block's keys: with several blocks, each needs braces",
                ));
            }
            None => Vec::new(),
        };
        Ok(ServerBlock { keys, directives })
    }

    /// The rest of a brace-less Corefile: directives to the end.
    fn directives_until_end(&mut self) -> Result<Vec<Directive>, CorefileError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            if t.is_close() {
                return Err(CorefileError::at(t.line, t.column, "} without a {"));
            }
            out.push(self.directive()?);
        }
        Ok(out)
    }

    /// Directives up to the `}` that closes `open`.
    fn block_body(&mut self, open: &Token) -> Result<Vec<Directive>, CorefileError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(CorefileError::at(
                        open.line,
                        open.column,
                        "this { is never closed",
                    ));
                }
                Some(t) if t.is_close() => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(t) if t.is_open() => {
                    return Err(CorefileError::at(
                        t.line,
                        t.column,
                        "{ where a directive's name belongs",
                    ));
                }
                Some(_) => out.push(self.directive()?),
            }
        }
    }

    /// `name args… [{ … }]`: the arguments are the rest of the name's line; a `{` ending
    /// the line opens the directive's block.
    fn directive(&mut self) -> Result<Directive, CorefileError> {
        let name = self.tokens[self.at].clone();
        self.at += 1;
        if name.text == "import" {
            return Err(CorefileError::at(
                name.line,
                name.column,
                "import is not followed: paste the imported file's directives here (the import reads one file)",
            ));
        }
        let mut args = Vec::new();
        let mut block = None;
        while let Some(t) = self.peek() {
            if t.line != name.line && !t.is_open() || t.is_close() {
                break;
            }
            let t = t.clone();
            self.at += 1;
            if t.is_open() {
                block = Some(self.block_body(&t)?);
                break;
            }
            // `{}` written together is an empty block, not a word.
            if !t.quoted && t.text == "{}" {
                block = Some(Vec::new());
                break;
            }
            args.push(t);
        }
        Ok(Directive { name, args, block })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokens;
    use super::*;

    fn corefile(text: &str) -> Result<Corefile, CorefileError> {
        parse(&tokens(text, &|_| None)?)
    }

    fn names(ds: &[Directive]) -> Vec<&str> {
        ds.iter().map(|d| d.name.text.as_str()).collect()
    }

    #[test]
    fn blocks_directives_arguments_and_nested_blocks() {
        let c = corefile(
            ".:53 {\n  errors\n  kubernetes cluster.local in-addr.arpa {\n    pods insecure\n    fallthrough in-addr.arpa\n  }\n  cache 30 {\n    success 9984 30\n    outer {\n      inner 1\n    }\n  }\n}\nexample.org:53 {\n  forward . 10.0.0.1\n}\n",
        )
        .unwrap();
        assert_eq!(c.blocks.len(), 2);
        let b = &c.blocks[0];
        assert_eq!(b.keys[0].text, ".:53");
        assert_eq!(names(&b.directives), ["errors", "kubernetes", "cache"]);
        let k = &b.directives[1];
        assert_eq!(k.args.len(), 2);
        assert_eq!(names(k.options()), ["pods", "fallthrough"]);
        let cache = &b.directives[2];
        assert_eq!(cache.args[0].text, "30");
        let outer = &cache.options()[1];
        assert_eq!(names(outer.options()), ["inner"]);
        assert_eq!(outer.options()[0].line(), 10);
        assert_eq!(c.blocks[1].line(), 14);
    }

    #[test]
    fn keys_split_on_commas_and_may_continue_on_the_next_line() {
        let c = corefile("a.org:53, b.org:53,\n  c.org:53 {\n  errors\n}\n").unwrap();
        let keys: Vec<&str> = c.blocks[0].keys.iter().map(|k| k.text.as_str()).collect();
        assert_eq!(keys, ["a.org:53", "b.org:53", "c.org:53"]);
    }

    #[test]
    fn a_lone_block_may_leave_out_its_braces_and_empty_blocks_are_fine() {
        let c = corefile(".:1053\nerrors\nhealth {}\n").unwrap();
        assert_eq!(names(&c.blocks[0].directives), ["errors", "health"]);
        assert_eq!(c.blocks[0].directives[1].block, Some(Vec::new()));
    }

    #[test]
    fn errors_name_line_and_column() {
        let at = |text: &str| {
            let e = corefile(text).unwrap_err();
            (e.line, e.column, e.reason)
        };
        let (l, c, r) = at(".:53 {\n  cache 30 {\n    success 1\n}\n");
        assert_eq!((l, c), (1, 6), "{r}");
        assert!(r.contains("never closed"), "{r}");
        let (l, c, r) = at(".:53 {\n  import common.conf\n}\n");
        assert_eq!((l, c), (2, 3));
        assert!(r.contains("import is not followed"), "{r}");
        let (l, _, r) = at("(common) {\n  errors\n}\n");
        assert_eq!(l, 1);
        assert!(r.contains("snippet (common)"), "{r}");
        let (l, c, _) = at("}\n");
        assert_eq!((l, c), (1, 1));
        let (l, _, r) = at(".:53 {\n}\nb.org:53\nerrors\n");
        assert_eq!(l, 4, "{r}");
        let (l, c, r) = at(", {\n  errors\n}\n");
        assert_eq!((l, c), (1, 1), "{r}");
        let (l, _, r) = at("");
        assert_eq!(l, 1);
        assert!(r.contains("no server block"), "{r}");
    }
}

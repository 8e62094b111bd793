//! The bearer token of a token file (the pod's service account, or a kubeconfig's
//! `tokenFile:`), read the way client-go reads it: trimmed, and read again when it
//! changes.
//!
//! kube reads such a file as it is — a token written with a trailing newline (as `echo`,
//! editors and some rotation tools write it) becomes an invalid header and every watch
//! fails — and re-reads it only once a minute. Here the file's identity (inode, size,
//! modification time) is checked on each request, which costs one `stat` per request to
//! the API server (a watch makes one every few minutes), and a changed file is read at
//! once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::http::{HeaderValue, Request, header};
use thiserror::Error;

/// Why a token file gives no token.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path} holds no token")]
    Empty { path: PathBuf },
    #[error("token file {path} holds characters a token cannot have")]
    Invalid { path: PathBuf },
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    // `metadata` follows symbolic links: the kubelet swaps a link to publish a new token.
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        inode: m.ino(),
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// A token file and the header made of its last good content.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
    current: Arc<Mutex<(Option<Stamp>, HeaderValue)>>,
}

impl TokenFile {
    /// Reads the file now: a file that cannot give a token stops the start.
    pub fn open(path: &Path) -> Result<TokenFile, TokenError> {
        let seen = stamp(path).ok();
        let header = read(path)?;
        Ok(TokenFile {
            path: path.to_owned(),
            current: Arc::new(Mutex::new((seen, header))),
        })
    }

    /// The `Authorization` header to send now: the file is read again if it changed. A
    /// changed file that gives no token is reported, and the last good token is used
    /// meanwhile (as client-go does: a file may be removed once the process has read it).
    pub fn header(&self) -> HeaderValue {
        let now = stamp(&self.path).ok();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_some() && now != current.0 {
            current.0 = now;
            match read(&self.path) {
                Ok(header) => current.1 = header,
                Err(e) => tracing::warn!("{e}; the last token read keeps being used"),
            }
        }
        current.1.clone()
    }

    /// Sets the header on a request.
    pub fn authorize<B>(&self, mut request: Request<B>) -> Request<B> {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, self.header());
        request
    }
}

fn read(path: &Path) -> Result<HeaderValue, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    // client-go trims the same way (strings.TrimSpace).
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    let mut header =
        HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| TokenError::Invalid {
            path: path.to_owned(),
        })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_rereads_and_keeps_the_last_good_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let file = TokenFile::open(&path).unwrap();
        assert_eq!(file.header(), "Bearer first");
        // A longer token: the size changes even if the clock does not tick.
        std::fs::write(&path, "  second-one \r\n").unwrap();
        assert_eq!(file.header(), "Bearer second-one");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            file.header(),
            "Bearer second-one",
            "an empty file is no token"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.header(), "Bearer second-one");
        assert!(matches!(
            TokenFile::open(&path),
            Err(TokenError::Read { .. })
        ));
        std::fs::write(&path, "a\nb").unwrap();
        assert!(matches!(
            TokenFile::open(&path),
            Err(TokenError::Invalid { .. })
        ));
    }
}

//! NATS contexts, as the `nats` CLI keeps them (ADR-21): JSON files at
//! `$XDG_CONFIG_HOME/nats/context/<name>.json` (default `~/.config`), the selected one named in
//! `nats/context.txt`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The keys of a context file the ledger uses (others are ignored).
#[derive(Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Context {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) creds: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) nkey: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) cert: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) ca: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tls_first: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) jetstream_domain: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) inbox_prefix: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show the secrets a context may hold.
        f.debug_struct("Context")
            .field("description", &self.description)
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Where the `nats` CLI keeps its configuration, from the environment the binary was given.
pub(crate) fn config_dir(
    xdg_config_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    xdg_config_home
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| home.map(|h| h.join(".config")))
        .map(|c| c.join("nats"))
}

/// Why a context could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error("NATS context {name:?} not found (looked for {path})")]
    NotFound { name: String, path: String },
    #[error("NATS context file {path} cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{0:?} is not a valid context name")]
    BadName(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != ".."
}

/// Loads the context `name`, or (with `None`) the selected one if any.
pub(crate) fn load(
    dir: &Path,
    name: Option<&str>,
) -> Result<Option<(String, Context)>, ContextError> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => match std::fs::read_to_string(dir.join("context.txt")) {
            Ok(selected) if !selected.trim().is_empty() => selected.trim().to_owned(),
            _ => return Ok(None),
        },
    };
    if !valid_name(&name) {
        return Err(ContextError::BadName(name));
    }
    let path = dir.join("context").join(format!("{name}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ContextError::NotFound {
                name,
                path: path.display().to_string(),
            });
        }
        Err(e) => {
            return Err(ContextError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    let context = serde_json::from_str(&text).map_err(|e| ContextError::Unreadable {
        path: path.display().to_string(),
        // serde_json's message names a line and column, never the file's content.
        reason: e.to_string(),
    })?;
    Ok(Some((name, context)))
}

/// Writes the context `name` (for `ledger up`: `nats --context ledger ...` reaches it), without
/// changing the selected one.
pub(crate) fn save(dir: &Path, name: &str, context: &Context) -> std::io::Result<PathBuf> {
    let folder = dir.join("context");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(context).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selected_context_is_read_and_a_named_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context {
            url: "nats://a:4222".into(),
            password: "pw".into(),
            ..Context::default()
        };
        save(dir.path(), "a", &ctx).unwrap();
        save(
            dir.path(),
            "b",
            &Context {
                url: "nats://b:4222".into(),
                ..Context::default()
            },
        )
        .unwrap();
        assert_eq!(load(dir.path(), None).unwrap(), None, "none selected");
        std::fs::write(dir.path().join("context.txt"), "a\n").unwrap();
        let (name, found) = load(dir.path(), None).unwrap().unwrap();
        assert_eq!((name.as_str(), found.url.as_str()), ("a", "nats://a:4222"));
        let (_, b) = load(dir.path(), Some("b")).unwrap().unwrap();
        assert_eq!(b.url, "nats://b:4222");
        assert!(matches!(
            load(dir.path(), Some("c")),
            Err(ContextError::NotFound { .. })
        ));
        assert!(matches!(
            load(dir.path(), Some("../x")),
            Err(ContextError::BadName(_))
        ));
        assert!(!format!("{found:?}").contains("pw"));
    }

    #[test]
    fn the_config_folder_follows_xdg_then_home() {
        assert_eq!(
            config_dir(Some("/x".into()), Some("/h".into())),
            Some(PathBuf::from("/x/nats"))
        );
        assert_eq!(
            config_dir(None, Some("/h".into())),
            Some(PathBuf::from("/h/.config/nats"))
        );
    }
}

//! What git says about paths in the current repository: tracked or not, ignored or not, by
//! git's own rules (nested `.gitignore` files, negations, `.git/info/exclude`, the global
//! excludes file), as `git check-ignore` would answer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Folders of other people's code, never searched for the project's env files even where
/// nothing ignores them.
const DEPENDENCY_DIRS: &[&str] = &[".git", "node_modules", "vendor", ".venv", "target"];

/// The repository around a directory, with its index loaded.
pub(crate) struct Repository {
    repo: gix::Repository,
    index: gix::worktree::Index,
}

impl Repository {
    /// The repository containing `dir`, or `None` when there is none.
    pub(crate) fn discover(dir: &Path) -> Result<Option<Repository>> {
        let Ok(repo) = gix::discover(dir) else {
            return Ok(None);
        };
        if repo.workdir().is_none() {
            return Ok(None);
        }
        let index = repo
            .index_or_empty()
            .context("the git index could not be read")?;
        Ok(Some(Repository { repo, index }))
    }

    /// The work tree's root.
    pub(crate) fn workdir(&self) -> PathBuf {
        self.repo
            .workdir()
            .expect("discover keeps only repositories with a work tree")
            .to_owned()
    }

    /// Whether `relative` (slash-separated, from the work tree root) is in the index.
    pub(crate) fn is_tracked(&self, relative: &str) -> bool {
        self.index.entry_by_path(relative.into()).is_some()
    }

    /// Git's ignore rules, loaded once for many questions.
    pub(crate) fn ignore_rules(&self) -> Result<IgnoreRules<'_>> {
        let stack = self
            .repo
            .excludes(
                &self.index,
                None,
                gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
            )
            .context("git's ignore rules could not be read")?;
        Ok(IgnoreRules { stack })
    }

    /// Every env file (`.env`, `.env.production`, not templates such as `.env.example`) in
    /// the work tree, sub-projects included, outside folders `rules` ignore and dependency
    /// folders; slash-separated paths from the root, sorted.
    pub(crate) fn env_files(&self, rules: &mut IgnoreRules<'_>) -> Result<Vec<String>> {
        find_env_files(&self.workdir(), false, |dir| rules.is_ignored_dir(dir))
    }

    /// `dir` as a slash-separated path from the work tree's root, when it is inside it.
    pub(crate) fn relative(&self, dir: &Path) -> Result<Option<String>> {
        let absolute = std::path::absolute(dir)?;
        let root = std::path::absolute(self.workdir())?;
        Ok(absolute
            .strip_prefix(&root)
            .ok()
            .map(|relative| relative.to_string_lossy().replace('\\', "/")))
    }
}

/// Files named like env files under `root` (templates too with `templates`), skipping
/// dependency folders and the folders `ignored_dir` names (given a slash path from `root`);
/// slash-separated paths from `root`, sorted.
pub(crate) fn find_env_files(
    root: &Path,
    templates: bool,
    mut ignored_dir: impl FnMut(&str) -> Result<bool>,
) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !DEPENDENCY_DIRS.contains(&name.as_str()) && !ignored_dir(&relative)? {
                    pending.push(relative);
                }
            } else if kind.is_file()
                && (is_env_file_name(&name) || templates && template_target(&name).is_some())
            {
                found.push(relative);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Git's ignore rules for one repository.
pub(crate) struct IgnoreRules<'r> {
    stack: gix::AttributeStack<'r>,
}

impl IgnoreRules<'_> {
    /// Whether git's ignore rules exclude the file `relative` (slash-separated, from the root).
    pub(crate) fn is_ignored(&mut self, relative: &str) -> Result<bool> {
        self.excluded(relative, gix::index::entry::Mode::FILE)
    }

    /// Whether git's ignore rules exclude the directory `relative`.
    pub(crate) fn is_ignored_dir(&mut self, relative: &str) -> Result<bool> {
        self.excluded(relative, gix::index::entry::Mode::DIR)
    }

    fn excluded(&mut self, relative: &str, mode: gix::index::entry::Mode) -> Result<bool> {
        let platform = self
            .stack
            .at_entry(relative, Some(mode))
            .with_context(|| format!("cannot match {relative} against the ignore rules"))?;
        Ok(platform.is_excluded())
    }
}

/// `.env` and `.env.<anything>`, except templates meant to be committed.
pub(crate) fn is_env_file_name(name: &str) -> bool {
    (name == ".env" || name.starts_with(".env.")) && !is_template(name)
}

/// Suffixes of env files meant to be committed with placeholder values.
const TEMPLATE_SUFFIXES: &[&str] = &[".example", ".sample", ".template", ".dist", ".defaults"];

/// Env files meant to be committed with placeholder values.
fn is_template(name: &str) -> bool {
    template_target(name).is_some()
}

/// The env file a template is copied to (`.env.production.example` → `.env.production`).
pub(crate) fn template_target(name: &str) -> Option<&str> {
    TEMPLATE_SUFFIXES.iter().find_map(|suffix| {
        name.strip_suffix(suffix)
            .filter(|target| *target == ".env" || target.starts_with(".env."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_names_leave_templates_out() {
        for name in [
            ".env",
            ".env.local",
            ".env.production",
            ".env.staging.local",
        ] {
            assert!(is_env_file_name(name), "{name}");
        }
        for name in [
            ".env.example",
            ".env.sample",
            ".envrc",
            "env",
            ".environment",
            ".env.dist",
        ] {
            assert!(!is_env_file_name(name), "{name}");
        }
    }
}

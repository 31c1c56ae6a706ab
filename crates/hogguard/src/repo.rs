//! What git says about paths in the current repository: tracked or not, ignored or not, by
//! git's own rules (nested `.gitignore` files, negations, `.git/info/exclude`, the global
//! excludes file), as `git check-ignore` would answer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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

    /// Whether git's ignore rules exclude the file `relative`.
    pub(crate) fn is_ignored(&self, relative: &str) -> Result<bool> {
        let mut excludes = self
            .repo
            .excludes(
                &self.index,
                None,
                gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
            )
            .context("git's ignore rules could not be read")?;
        let platform = excludes
            .at_entry(relative, Some(gix::index::entry::Mode::FILE))
            .with_context(|| format!("cannot match {relative} against the ignore rules"))?;
        Ok(platform.is_excluded())
    }
}

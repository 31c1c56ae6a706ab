//! Inputs: files and directories, a git object store, the git index.

#[cfg(feature = "files")]
pub(crate) mod files;
#[cfg(feature = "git")]
pub(crate) mod git;
#[cfg(feature = "git")]
pub(crate) mod staged;

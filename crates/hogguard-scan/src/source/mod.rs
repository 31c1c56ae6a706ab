//! Inputs: files and directories, a git object store, the git index.

pub(crate) mod files;
pub(crate) mod git;
pub(crate) mod staged;

//! Test support: the Python interpreter of the interop virtual environment.
//!
//! `.ci/interop-python` builds a virtual environment with the owning projects' own code
//! (IntelMQ, xarf, stix2, pymisp, aiosmtpd) and `.ci/run` exports its interpreter as
//! `CI_INTEROP_PYTHON`. Tests that need it call [`interop_python`]: without the variable
//! they are skipped with a message, unless `CI_INTEROP_REQUIRED=1` (as in CI), when a
//! missing environment fails them.

use std::path::PathBuf;

/// The interop interpreter, or `None` (after saying so) when tests should skip.
pub fn interop_python() -> Option<PathBuf> {
    match std::env::var_os("CI_INTEROP_PYTHON") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            if std::env::var("CI_INTEROP_REQUIRED").as_deref() == Ok("1") {
                panic!("CI_INTEROP_REQUIRED=1 but CI_INTEROP_PYTHON is not set");
            }
            eprintln!(
                "skipped: CI_INTEROP_PYTHON is not set (run `eval \"$(bash .ci/interop-python)\"`)"
            );
            None
        }
    }
}

/// The repository's `tests/interop` folder (validator scripts, the SMTP test server).
pub fn interop_scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

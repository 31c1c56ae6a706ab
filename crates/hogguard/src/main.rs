//! The `hogguard` command; everything lives in the library so that it can be tested.

fn main() -> std::process::ExitCode {
    hogguard::main(std::env::args_os())
}

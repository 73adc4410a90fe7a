//! The `linkscope` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    linkscope::cli::main()
}

//! The `hamgate` binary: parses the command line and hands over to [`hamgate::cli`].

fn main() -> std::process::ExitCode {
    hamgate::cli::main()
}

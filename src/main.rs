//! The `hamgate` binary: the command line over the `hamgate` library. Printing happens here,
//! never in the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

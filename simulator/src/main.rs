//! The `p1sim` command: a thin shell over the library's commands.

fn main() -> std::process::ExitCode {
    p1sim::cli::main()
}

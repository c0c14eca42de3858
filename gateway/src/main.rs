//! `gridwatch-gateway`: see [`gridwatch_gateway::cli`].

fn main() -> std::process::ExitCode {
    gridwatch_gateway::cli::main()
}

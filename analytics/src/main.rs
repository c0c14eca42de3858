//! `gridwatch-analytics`: see [`gridwatch_analytics::cli`].

fn main() -> std::process::ExitCode {
    gridwatch_analytics::cli::main()
}

//! mossd: the privileged daemon. Its D-Bus service arrives with the daemon issue.

fn main() -> std::process::ExitCode {
    // Stderr is the only channel a daemon without a bus has; say what is missing and fail.
    #[expect(clippy::print_stderr, reason = "binary entry point")]
    {
        eprintln!("mossd: the D-Bus service is not built yet; use `moss -D ROOT` direct mode");
    }
    std::process::ExitCode::from(69)
}

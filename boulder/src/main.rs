//! boulder: builds stone packages from recipes. Recipe handling arrives with the boulder issue.

fn main() -> std::process::ExitCode {
    #[expect(clippy::print_stderr, reason = "binary entry point")]
    {
        eprintln!("boulder: building recipes is not implemented yet");
    }
    std::process::ExitCode::from(69)
}

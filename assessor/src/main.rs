//! `assessor`: the thin shell around [`assessor::main`].

fn main() -> std::process::ExitCode {
    assessor::main()
}

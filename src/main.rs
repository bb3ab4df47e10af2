fn main() -> std::process::ExitCode {
    openmeet_appservice::cli::main()
}

//! The `moonbench` binary: parses the command line and hands off to the library.

fn main() {
    std::process::exit(moonbench::cli::main());
}

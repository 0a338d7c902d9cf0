//! Nitrokey's opcard (OpenPGP card 3.4) in pcscd's vpcd reader; see README.md.

fn main() -> std::process::ExitCode {
    keystation_test_peers::cli::main(keystation_test_peers::cli::Peer::OpenPgp)
}

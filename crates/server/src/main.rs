#[tokio::main]
async fn main() -> std::process::ExitCode {
    match latchkey::cli::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

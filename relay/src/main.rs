//! `cti-relay`: runs the relay with configuration from the environment (see the README).

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "cti-relay",
    version,
    about = "CTI relay for SAP Sales Cloud V2"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the relay (the default).
    Serve,
    /// Phone-number tools.
    #[command(subcommand)]
    Numbers(NumbersCommand),
}

#[derive(Subcommand, Debug)]
enum NumbersCommand {
    /// Read numbers, one per line, on stdin; write `input<TAB>+E164` or `input<TAB>invalid:<reason>`.
    Normalize {
        /// ISO 3166 region for numbers written nationally, e.g. CH.
        #[arg(long)]
        region: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CTI_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Numbers(NumbersCommand::Normalize { region }) => normalize(&region),
    }
}

fn normalize(region: &str) -> anyhow::Result<()> {
    let region = cti_relay::numbers::DefaultRegion::parse(region)
        .map_err(|_| anyhow::anyhow!("--region {region:?} is not an ISO 3166 region code"))?;
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match cti_relay::numbers::batch::normalize_lines(stdin, stdout, &region) {
        Ok(stats) => {
            eprintln!("{} numbers, {} invalid", stats.lines, stats.invalid);
            Ok(())
        }
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(err).context("normalizing stdin"),
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = cti_relay::Config::from_env().context("invalid configuration")?;
    let listen = config.listen;
    let stores = if config.redis_url.is_some() {
        "redis"
    } else {
        "memory"
    };
    let state = cti_relay::AppState::from_config(config)
        .await
        .context("connecting the stores")?;
    tracing::info!(stores, "stores ready");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let _background = cti_relay::start_background(&state);
    tracing::info!("relay listening on http://{}", listener.local_addr()?);
    axum::serve(listener, cti_relay::api::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await
        .context("server failed")
}

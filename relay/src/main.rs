//! `cti-relay`: runs the relay with configuration from the environment (see the README).

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "cti-relay",
    version,
    about = "CTI relay for SAP Sales Cloud V2",
    after_help = "Configured by environment variables: `cti-relay serve --help` lists them all."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the relay (the default), configured by environment variables.
    #[command(after_help = cti_relay::config::environment_help())]
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
    /// Crawl the configured V2 tenant and write CSV of every phone field that will not match
    /// callers (cannot be normalized, or V2's stored normalised value disagrees).
    Audit {
        /// The tenant to audit (needed when several are configured).
        #[arg(long)]
        tenant: Option<String>,
        /// Write the CSV here instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Write corrected values of disagreeing fields back to V2 (If-Match guarded).
        #[arg(long)]
        fix: bool,
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
        Command::Numbers(NumbersCommand::Audit { tenant, out, fix }) => {
            audit(tenant.as_deref(), out.as_deref(), fix).await
        }
    }
}

async fn audit(
    tenant: Option<&str>,
    out: Option<&std::path::Path>,
    fix: bool,
) -> anyhow::Result<()> {
    use cti_relay::numbers::audit::{self, AuditOptions, Progress};
    use indicatif::{ProgressBar, ProgressStyle};

    let config = cti_relay::Config::from_env().context("invalid configuration")?;
    let tenant = match tenant {
        Some(id) => config
            .tenant(id)
            .with_context(|| format!("no tenant {id:?} is configured"))?,
        None => match config.tenants.as_slice() {
            [only] => only,
            _ => anyhow::bail!("several tenants are configured; choose one with --tenant"),
        },
    };
    let region = tenant.region.clone();
    let client = cti_relay::v2::V2Client::new(
        &tenant.v2_url,
        cti_relay::v2::client::V2Auth::Basic {
            user: tenant.v2_user.clone(),
            password: tenant.v2_password.clone(),
        },
        config.v2_timeout,
    );
    let output: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    // On stderr, drawn only when stderr is a terminal.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let summary = audit::run(
        &client,
        &region,
        AuditOptions { fix },
        output,
        |p| match p {
            Progress::Crawling {
                collection,
                done,
                total,
            } => {
                bar.set_message(format!("reading {collection}"));
                bar.set_length(total.unwrap_or(done));
                bar.set_position(done);
            }
            Progress::Fixing { done, total } => {
                bar.set_message("fixing");
                bar.set_length(total);
                bar.set_position(done);
            }
        },
    )
    .await
    .with_context(|| format!("auditing tenant {:?}", tenant.id))?;
    bar.finish_and_clear();
    eprintln!(
        "{} records, {} phone fields: {} invalid, {} disagreeing with V2's normalised value{}",
        summary.records,
        summary.fields,
        summary.invalid,
        summary.mismatched,
        if fix {
            format!(
                "; {} fixed ({} changed meanwhile and were judged again), {} failed",
                summary.fixed, summary.conflicts, summary.failed
            )
        } else {
            String::new()
        }
    );
    if summary.failed > 0 {
        anyhow::bail!(
            "{} corrections failed (see the action column)",
            summary.failed
        );
    }
    Ok(())
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
    // Every widget holds a socket: thousands of reps need more than the usual 1,024 files.
    match cti_relay::server::raise_open_file_limit() {
        Ok(limit) if limit.now > limit.was => tracing::info!(
            from = limit.was,
            to = limit.now,
            "raised the open-file limit to the hard limit"
        ),
        Ok(limit) => tracing::info!(limit = limit.now, hard = limit.hard, "open-file limit"),
        Err(err) => tracing::warn!(
            %err, "keeping the open-file limit the relay was started with: connections past it \
                   will be refused"
        ),
    }
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
    let signal = state.clone();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("shutting down: telling widgets to reconnect");
        signal.shut_down();
    });
    let stopping = state.clone();
    let served =
        cti_relay::server::serve(
            listener,
            state.clone(),
            async move { stopping.stopping().await },
        )
        .await
        .context("server failed");
    // Activities the phone system was told were taken go to V2 before the process ends.
    cti_relay::drain(&state).await;
    served
}

/// Ctrl-C, or SIGTERM (what Cloud Foundry sends before stopping an instance).
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `cti-sim`: the simulated V2 tenant, PBX, identity provider and host page on one port.
//!
//! Configured by `SIM_*` environment variables (see `SimConfig::from_lookup`); logs go to
//! stderr, filtered by `RUST_LOG` (default `info`).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cti_sim::{Sim, SimConfig, router};
use tracing_subscriber::EnvFilter;

/// Takes no arguments: everything is set through `SIM_*` variables. The parser is there so that
/// `--help` and `--version` answer and a mistyped flag is refused instead of starting a
/// simulator on the defaults.
#[derive(Parser, Debug)]
#[command(
    name = "cti-sim",
    version,
    about = "Simulated V2 tenant, telephony providers, identity provider and V2 host page, on one port",
    after_help = cti_sim::help::environment_help()
)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cti-sim: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with every cause, e.g. which variable is wrong, rather than a backtrace.
            eprintln!("cti-sim: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut config = SimConfig::from_env().context("invalid simulator configuration")?;
    // The simulated Finesse's notification service, kept until the simulator stops.
    let _prosody = cti_sim::prosody::for_configured_finesse(&mut config).await;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (SIM_LISTEN)", config.listen))?;
    let addr = listener
        .local_addr()
        .context("listening socket has no address")?;
    tracing::info!(
        relay = %config.relay_url,
        tenant = %config.tenant,
        agent = %config.demo_agent,
        "simulator starting"
    );
    // The signing key takes seconds to make: make it before the first token is asked for.
    cti_sim::idp::warm_up().await;
    let sim = Sim::new(config);
    cti_sim::listen_protocols(&sim).context("starting the simulated providers' own ports")?;
    if let Some(addr) = sim.config.asterisk_listen {
        println!("simulated Asterisk AMI on {addr}");
    }
    if let Some(addr) = sim.config.freeswitch_listen {
        println!("simulated FreeSWITCH event socket on {addr}");
    }
    let app = router(sim);

    println!("cti-sim listening on http://{addr}");
    println!("V2 host stand-in: http://{addr}/sim/host/");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving failed")?;
    tracing::info!("simulator stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one (what process managers and `cf stop` send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

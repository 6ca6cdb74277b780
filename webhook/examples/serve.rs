//! `/mutate` and `/validate` over TLS as `serin webhook --standalone` serves them, without the CLI
//! around it: for profiling the server (perf, CPU time per review) while the workspace binary is
//! being rebuilt. `cargo run --release -p serin-webhook --example serve -- CERT KEY PORT`
//! (SERVE_WORKER_THREADS=N sets the connection threads; default: one per core, as `serin`).

use std::sync::Arc;

use serin_webhook::{AppState, MemoryCanaryIndex, ReloadingCert};

// The allocator the `serin` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cert, key, port] = args.as_slice() else {
        eprintln!("usage: serve CERT.pem KEY.pem PORT");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("PORT: a TCP port number");
    let cert = ReloadingCert::from_files(cert.as_ref(), key.as_ref()).expect("certificate");
    let threads = std::env::var("SERVE_WORKER_THREADS").map_or_else(
        |_| std::thread::available_parallelism().map_or(1, usize::from),
        |threads| threads.parse().expect("SERVE_WORKER_THREADS: a count"),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("listen");
        let app = serin_webhook::router(AppState::new(Arc::new(MemoryCanaryIndex::new())));
        serin_webhook::serve_tls(listener, cert.server_config().expect("tls"), app, threads)
            .await
            .expect("serve");
    });
}

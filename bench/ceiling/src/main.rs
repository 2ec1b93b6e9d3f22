//! The benchmark's ceiling: the least an HTTP/1.1 server on this machine
//! can do per request. It answers every request with one fixed JSON body
//! (the same bytes as latchkey's `GET /api/v4/user` response in the run),
//! so latchkey's figures can be read as a ratio to it.
//!
//! Usage: `latchkey-ceiling PORT BODY_FILE` (or `CEILING_PORT`,
//! `CEILING_BODY_FILE`). It listens on 127.0.0.1 only. Like latchkey it
//! runs tokio's multi-thread runtime, which sizes itself to the CPUs the
//! process may use (one, under `taskset -c 0`).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn arg_or_env(index: usize, env: &str) -> Option<String> {
    std::env::args()
        .nth(index)
        .or_else(|| std::env::var(env).ok())
}

fn main() -> std::process::ExitCode {
    let usage = "usage: latchkey-ceiling PORT BODY_FILE (or CEILING_PORT, CEILING_BODY_FILE)";
    let Some(port) = arg_or_env(1, "CEILING_PORT").and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("{usage}");
        return std::process::ExitCode::from(2);
    };
    let Some(path) = arg_or_env(2, "CEILING_BODY_FILE") else {
        eprintln!("{usage}");
        return std::process::ExitCode::from(2);
    };
    let body = match std::fs::read(&path) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            eprintln!("latchkey-ceiling: cannot read {path}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latchkey-ceiling: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(port, body)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(port: u16, body: Bytes) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let json = HeaderValue::from_static("application/json");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        let json = json.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<Incoming>| {
                let mut resp = Response::new(Full::new(body.clone()));
                resp.headers_mut().insert(CONTENT_TYPE, json.clone());
                async move { Ok::<_, Infallible>(resp) }
            });
            // Errors are clients going away; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

//! A minimal upstream for benchmarks and manual tries: reads each request's body and answers
//! `200 {"received":<body length>}`.
//!
//! ```text
//! cargo run --release -p hogguard-gateway --example echo_upstream -- 127.0.0.1:18080
//! ```
//!
//! Worker threads follow `TOKIO_WORKER_THREADS` (default: one per core).

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: echo_upstream ADDRESS")?
        .parse()?;
    let listener = TcpListener::bind(address).await?;
    eprintln!("echo_upstream: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            // A client going away mid-request is not this example's concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let mut response = Response::new(Full::new(Bytes::from(format!(
        r#"{{"received":{}}}"#,
        body.len()
    ))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

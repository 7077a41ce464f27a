//! tokio's side of the network benchmark (bench/net_compare.py): the keep-alive
//! HTTP/1.1 "hello world" server and echo server of bench/http_aio.cpp, on a
//! current-thread runtime (one thread, like every other peer), one spawned task a
//! connection. HTTP: read into a buffer, answer every complete request head
//! ("\r\n\r\n") in it with the fixed response, all of one read's answers in one
//! write_all. Echo: read up to 64 KiB, write_all it back.
//!
//!     http_tokio PORT [http|echo]
//!
//! Serves until killed (SIGTERM).

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: bench\r\n\
Content-Type: text/plain\r\n\
Content-Length: 12\r\n\
\r\n\
Hello world\n";

async fn serve_http(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buffer: Vec<u8> = Vec::with_capacity(65536);
    let mut answers: Vec<u8> = Vec::new();
    loop {
        let n = socket.read_buf(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        let mut start = 0;
        answers.clear();
        while let Some(at) = buffer[start..].windows(4).position(|w| w == b"\r\n\r\n") {
            start += at + 4;
            answers.extend_from_slice(RESPONSE);
        }
        buffer.drain(..start);
        if !answers.is_empty() {
            socket.write_all(&answers).await?;
        }
    }
}

async fn serve_echo(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 65536];
    loop {
        let n = socket.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        socket.write_all(&buffer[..n]).await?;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = match args.get(1).and_then(|p| p.parse().ok()) {
        Some(p) if args.len() <= 3 => p,
        _ => {
            eprintln!("usage: http_tokio PORT [http|echo]");
            std::process::exit(2);
        }
    };
    let echo = match args.get(2).map(String::as_str) {
        None | Some("http") => false,
        Some("echo") => true,
        Some(_) => {
            eprintln!("usage: http_tokio PORT [http|echo]");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("http_tokio: {} on 127.0.0.1:{}", if echo { "echo" } else { "http" },
                 listener.local_addr().unwrap().port());
        std::io::stdout().flush().ok();
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(pair) => pair,
                Err(_) => continue,
            };
            socket.set_nodelay(true).ok();
            if echo {
                tokio::spawn(async move { serve_echo(socket).await.ok(); });
            } else {
                tokio::spawn(async move { serve_http(socket).await.ok(); });
            }
        }
    });
}

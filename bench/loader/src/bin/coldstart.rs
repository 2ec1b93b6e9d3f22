//! Cold start to ready: spawn a command, poll `GET PATH` on 127.0.0.1:PORT
//! every 0.5 ms, and print the milliseconds from spawn to the first 200.
//! Then stop the process (SIGTERM via kill(1), SIGKILL after 5 s). The
//! command's standard output is discarded; its standard error is inherited.
//!
//! `latchkey-bench-coldstart PORT PATH -- COMMAND [ARGS...]`

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn ready(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"HTTP/1.1 200")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let sep = args.iter().position(|a| a == "--");
    let (Some(port), Some(path), Some(sep)) = (
        args.get(1).and_then(|p| p.parse::<u16>().ok()),
        args.get(2),
        sep,
    ) else {
        eprintln!("usage: latchkey-bench-coldstart PORT PATH -- COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let Some((program, rest)) = args[sep + 1..].split_first() else {
        eprintln!("latchkey-bench-coldstart: no command");
        return ExitCode::from(2);
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    let mut child = match Command::new(program)
        .args(rest)
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey-bench-coldstart: cannot run {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut elapsed = None;
    while start.elapsed() < Duration::from_secs(30) {
        if ready(addr, path) {
            elapsed = Some(start.elapsed());
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("latchkey-bench-coldstart: the server exited early: {status}");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    match elapsed {
        Some(d) => {
            println!("{:.2}", d.as_secs_f64() * 1000.0);
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("latchkey-bench-coldstart: not ready within 30 s");
            ExitCode::FAILURE
        }
    }
}

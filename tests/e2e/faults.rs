//! Hostile chargers and overload: traffic the frame table in `frames.rs` does not cover (stray
//! answers, duplicate ids, overlapping CALLs, deep nesting, ping floods, huge and invalid
//! frames, handshakes that never finish, chargers that never read), commands far past the
//! per-charger queue, CALL floods from many chargers and the same id connecting many times at
//! once. Each case states the exact reaction and then checks that the gateway is still healthy
//! and serving; memory is read from `/proc/PID/status`. The 10,000-charger reconnect storm is a
//! load test (`tests/load/`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use voltgate_tests::{Api, Charger, Received};

use crate::{metric, metric_if_present, metrics, Estate, QUIET};

/// The gateway's handshake deadline (`HANDSHAKE_TIMEOUT` in the charger server).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// `/healthz` answers 200 and a fresh charger can connect, boot and take a command.
pub async fn assert_healthy(estate: &Estate, probe_id: &str) {
    let health = reqwest::get(format!("{}/healthz", estate.gateway.api_url))
        .await
        .expect("healthz reachable");
    assert_eq!(health.status().as_u16(), 200, "healthz");
    let known = estate
        .admin
        .get(&format!("/api/v1/chargers/{probe_id}"))
        .await
        .unwrap();
    if known.status == 404 {
        estate
            .admin
            .charger(probe_id, "site-a")
            .await
            .unwrap()
            .expect(201);
    }
    let mut probe = Charger::connect(&estate.gateway.ocpp_url, probe_id, &["ocpp1.6"])
        .await
        .expect("a new charger connects");
    probe.boot().await.expect("a new charger boots");
    let api = estate.ops.clone();
    let id = probe_id.to_string();
    let command = tokio::spawn(async move { api.command(&id, "clear-cache", json!({})).await });
    let (call, action, _) = probe
        .next_call(Duration::from_secs(10))
        .await
        .expect("the command reaches the probe");
    assert_eq!(action, "ClearCache");
    probe.reply(&call, json!({"status": "Accepted"})).unwrap();
    command.await.unwrap().unwrap().expect(200);
}

fn ocpp_socket_addr(ocpp_url: &str) -> String {
    let rest = ocpp_url.strip_prefix("ws://").expect("ws:// url");
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[tokio::test]
async fn hostile_charger_traffic_gets_its_exact_reaction() {
    let estate = Estate::new(&["--command-timeout", "5s"]).await;
    let mut charger = estate.charger("CP-HOSTILE", "ocpp1.6").await;

    // A CALLRESULT and a CALLERROR for ids the gateway never sent: no answer at all, counted.
    let before = metrics(&estate.gateway.api_url).await;
    let stray = r#"voltgate_ocpp_frames_rejected_total{reason="unknown_message_id"}"#;
    charger
        .reply("never-sent", json!({"status": "Accepted"}))
        .unwrap();
    charger
        .reply_error("never-sent-2", "InternalError", "?")
        .unwrap();
    assert!(
        charger.next(QUIET).await.is_none(),
        "a stray answer must not be answered"
    );
    let after = metrics(&estate.gateway.api_url).await;
    // Absent before: the counter appears with its first increment.
    let stray_before = metric_if_present(&before, stray).unwrap_or(0.0);
    assert_eq!(metric(&after, stray) - stray_before, 2.0);
    charger.call_ok("Heartbeat", json!({})).await.unwrap();

    // Two CALLs with the same message id: each is answered, in order, with that id.
    for _ in 0..2 {
        charger.send_text(r#"[2,"dup-1","Heartbeat",{}]"#).unwrap();
    }
    for n in 0..2 {
        match charger.next(Duration::from_secs(5)).await {
            Some(Received::Result { id, payload }) => {
                assert_eq!(id, "dup-1", "answer {n}");
                assert!(payload["currentTime"].is_string());
            }
            other => panic!("duplicate id, answer {n}: {other:?}"),
        }
    }

    // A charger CALL while the gateway's own CALL is outstanding: answered at once; the
    // gateway's CALL still completes when the charger answers it afterwards.
    let api = estate.ops.clone();
    let command =
        tokio::spawn(async move { api.command("CP-HOSTILE", "clear-cache", json!({})).await });
    let (outstanding, _, _) = charger
        .next_call(Duration::from_secs(5))
        .await
        .expect("the command arrives");
    let beat = charger.call_ok("Heartbeat", json!({})).await.unwrap();
    assert!(beat["currentTime"].is_string());
    charger
        .reply(&outstanding, json!({"status": "Accepted"}))
        .unwrap();
    let reply = command.await.unwrap().unwrap().expect(200);
    assert_eq!(reply.body["status"], "Accepted");

    // Deeply nested JSON (past any parser recursion limit): a CALLERROR, connection kept.
    let deep = format!(
        r#"[2,"m-deep","DataTransfer",{{"vendorId":"x","data":{}{}}}]"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    charger.send_text(&deep).unwrap();
    match charger.next(Duration::from_secs(5)).await {
        Some(Received::Error { code, .. }) => assert!(
            ["FormationViolation", "ProtocolError", "GenericError"].contains(&code.as_str()),
            "deep nesting: {code}"
        ),
        other => panic!("deep nesting: expected a CALLERROR, got {other:?}"),
    }
    charger.call_ok("Heartbeat", json!({})).await.unwrap();

    // A ping flood: every ping is answered by the WebSocket layer and OCPP traffic goes on.
    let flooder = raw_client(&estate.gateway.ocpp_url, "CP-HOSTILE").await;
    let flood = 20_000;
    let started = Instant::now();
    let (mut sink, mut source) = flooder.split();
    let sender = tokio::spawn(async move {
        for n in 0..flood {
            sink.feed(Message::Ping(format!("{n}").into_bytes().into()))
                .await
                .unwrap();
        }
        sink.send(Message::text(r#"[2,"after-flood","Heartbeat",{}]"#))
            .await
            .unwrap();
        sink
    });
    let mut pong_count = 0u32;
    let answered = loop {
        match tokio::time::timeout(Duration::from_secs(20), source.next()).await {
            Ok(Some(Ok(Message::Pong(_)))) => pong_count += 1,
            Ok(Some(Ok(Message::Text(text)))) if text.contains("after-flood") => break true,
            Ok(Some(Ok(_))) => {}
            _ => break false,
        }
    };
    assert!(answered, "no Heartbeat answer after a ping flood");
    assert!(pong_count > 0, "no pong at all");
    eprintln!(
        "ping flood: {flood} pings, {pong_count} pongs, answered in {:?}",
        started.elapsed()
    );
    let _ = sender.await;
    drop(source);

    // The first connection was replaced by the flooder's: reconnect for the frame-size cases.
    let mut charger = Charger::connect(&estate.gateway.ocpp_url, "CP-HOSTILE", &["ocpp1.6"])
        .await
        .unwrap();
    charger.boot().await.unwrap();

    // A 10 MB frame (limit 64 KiB): close 1009 at once, without buffering the whole frame.
    let big = format!(
        r#"[2,"m-10mb","DataTransfer",{{"vendorId":"x","data":"{}"}}]"#,
        "y".repeat(10 * 1024 * 1024)
    );
    charger.send_text(&big).unwrap();
    let outcome = charger.closed(Duration::from_secs(10)).await;
    assert_eq!(outcome, Some(Some(1009)), "10 MB frame");

    // A text frame that is not UTF-8: close 1007.
    let mut raw = raw_client(&estate.gateway.ocpp_url, "CP-HOSTILE").await;
    let invalid = Frame::message(vec![b'[', 0xff, 0xfe, b']'], OpCode::Data(Data::Text), true);
    raw.send(Message::Frame(invalid)).await.unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), raw.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            other => panic!("invalid UTF-8: no close frame: {other:?}"),
        }
    };
    assert_eq!(close, Some(1007), "invalid UTF-8");

    assert_healthy(&estate, "CP-PROBE-1").await;
}

type RawClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bare OCPP 1.6 WebSocket client, for frames the scripted charger cannot send.
async fn raw_client(ocpp_url: &str, id: &str) -> RawClient {
    let mut request = format!("{}/{}", ocpp_url.trim_end_matches('/'), id)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    let (stream, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("raw client connects");
    stream
}

#[tokio::test]
async fn handshakes_that_never_finish_are_dropped() {
    let estate = Estate::new(&[]).await;
    let addr = ocpp_socket_addr(&estate.gateway.ocpp_url);
    // 300 slowloris connections: a request head that is never finished, a byte every 500 ms.
    // Each connection's close is awaited by its own reader, timed from its own connect, so the
    // measurement adds no polling delay of its own.
    let mut closes = Vec::new();
    for n in 0..300 {
        let mut stream = TcpStream::connect(&addr).await.expect("tcp connect");
        let connected = Instant::now();
        stream
            .write_all(format!("GET /ocpp/CP-SLOW-{n} HTTP/1.1\r\nHost: x\r\n").as_bytes())
            .await
            .unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let dripping = tokio::spawn(async move {
            while writer.write_all(b"X").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        closes.push(tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let closed = tokio::time::timeout(HANDSHAKE_DEADLINE * 2, reader.read(&mut byte))
                .await
                .ok()
                .map(|read| {
                    assert!(!matches!(read, Ok(n) if n > 0), "the gateway answered");
                    connected.elapsed()
                });
            dripping.abort();
            closed
        }));
    }
    // Meanwhile real chargers are served as usual.
    assert_healthy(&estate, "CP-PROBE-2").await;
    let mut closed_after = Vec::new();
    for close in closes {
        closed_after.push(close.await.unwrap());
    }
    let open = closed_after.iter().filter(|c| c.is_none()).count();
    assert_eq!(open, 0, "{open} slow handshakes were never dropped");
    let closed_after: Vec<Duration> = closed_after.into_iter().flatten().collect();
    let earliest = closed_after.iter().min().copied().unwrap_or_default();
    let latest = closed_after.iter().max().copied().unwrap_or_default();
    assert!(
        earliest >= HANDSHAKE_DEADLINE - Duration::from_millis(100)
            && latest <= HANDSHAKE_DEADLINE + Duration::from_secs(1),
        "dropped between {earliest:?} and {latest:?} after connecting"
    );
    eprintln!("300 slow handshakes dropped, the last after {latest:?}");
    // The socket closes as the handshake is given up, a moment before the refusal is counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics(&estate.gateway.api_url).await;
        let counted = metric(
            &text,
            r#"voltgate_ocpp_handshakes_refused_total{reason="timeout"}"#,
        );
        if counted == 300.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{counted} of 300 timeouts counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_healthy(&estate, "CP-PROBE-3").await;
}

/// A 1.6 charger connected through a socket with a 4 KiB receive buffer, so the gateway's
/// answers back up quickly once it stops reading.
async fn small_window_charger(
    estate: &Estate,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let addr: std::net::SocketAddr = ocpp_socket_addr(&estate.gateway.ocpp_url).parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = estate
        .gateway
        .charger_url(id)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("handshake");
    socket
}

#[tokio::test]
async fn a_charger_that_never_reads_is_dropped_and_the_gateway_is_not() {
    let estate = Estate::new(&["--command-timeout", "2s"]).await;
    estate
        .admin
        .charger("CP-DEAF", "site-a")
        .await
        .unwrap()
        .expect(201);
    let deaf = small_window_charger(&estate, "CP-DEAF").await;
    let (mut sink, source) = deaf.split();
    let rss_before = rss_kib(estate.gateway.pid());
    // Sends CALLs and never reads a byte, until the gateway drops it. A send that stays
    // blocked for a while is retried rather than taken as the end: on a busy machine the
    // gateway may simply not have been scheduled, and only the gateway's answers filling the
    // socket make it stop reading and drop the charger.
    let writer = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut sent = 0u64;
        loop {
            let frame = format!(r#"[2,"h{sent}","Heartbeat",{{}}]"#);
            match tokio::time::timeout(Duration::from_secs(3), sink.send(Message::text(frame)))
                .await
            {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) => return (sent, sink),
                Err(_) if started.elapsed() > Duration::from_secs(30) => return (sent, sink),
                Err(_) => {}
            }
        }
    });
    // Operator commands pile up behind it: never more than the queue holds, the rest 503.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut commands = Vec::new();
    for _ in 0..64 {
        let api = estate.ops.clone();
        commands.push(tokio::spawn(async move {
            api.command("CP-DEAF", "clear-cache", json!({})).await
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for command in commands {
        let reply = command.await.unwrap().unwrap();
        *statuses.entry(reply.status).or_insert(0u32) += 1;
    }
    eprintln!("commands at a charger that never reads: {statuses:?}");
    assert!(
        statuses.keys().all(|s| [409, 503, 504].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&503).copied().unwrap_or(0) >= 64 - 33,
        "{statuses:?}"
    );
    let (sent, _sink) = writer.await.unwrap();
    // The gateway drops the connection within its command timeout once its writes stall.
    estate
        .ops
        .wait_disconnected("CP-DEAF", Duration::from_secs(10))
        .await
        .expect("the deaf charger is dropped");
    drop(source);
    let rss_after = rss_kib(estate.gateway.pid());
    eprintln!("deaf charger: {sent} CALLs sent unread; RSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    let text = metrics(&estate.gateway.api_url).await;
    assert!(
        metric(
            &text,
            r#"voltgate_ocpp_frames_rejected_total{reason="send_timeout"}"#
        ) == 1.0,
        "the drop is not counted"
    );
    assert_healthy(&estate, "CP-PROBE-4").await;
}

/// A charger that stops reading and, with its own sends stalled, stops sending too: the
/// answers owed to it sit in the socket's send buffer (which the kernel grows to megabytes), so
/// no write of the gateway's ever blocks long enough for its write deadline to fire. It must
/// still be dropped within the command timeout, keep-alive pings off, rather than stay
/// "connected" with every command timing out at it.
#[tokio::test]
async fn a_charger_that_stops_reading_and_sending_is_dropped_within_the_command_timeout() {
    let estate = Estate::new(&["--command-timeout", "2s", "--ws-ping-interval", "0"]).await;
    estate
        .admin
        .charger("CP-STALLED", "site-a")
        .await
        .unwrap()
        .expect(201);
    let stalled = small_window_charger(&estate, "CP-STALLED").await;
    let (mut sink, source) = stalled.split();
    // Answers worth several times the charger's receive window, then silence both ways.
    for n in 0..600 {
        sink.send(Message::text(format!(r#"[2,"h{n}","Heartbeat",{{}}]"#)))
            .await
            .expect("the gateway reads what the charger sends");
    }
    let stalled_at = Instant::now();
    let dropped = estate
        .ops
        .wait_disconnected("CP-STALLED", Duration::from_secs(15))
        .await;
    eprintln!(
        "charger that stopped reading and sending: dropped after {:?}",
        stalled_at.elapsed()
    );
    dropped.expect("the stalled charger is dropped");
    drop((sink, source));
    let text = metrics(&estate.gateway.api_url).await;
    assert_eq!(
        metric(
            &text,
            r#"voltgate_ocpp_frames_rejected_total{reason="send_timeout"}"#
        ),
        1.0,
        "the drop is not counted as a send timeout"
    );
    assert_healthy(&estate, "CP-PROBE-5").await;
}

/// Fires `total` commands at a charger, at most `parallel` at a time; returns counts by status.
async fn command_burst(
    api: &Api,
    charger: &str,
    total: usize,
    parallel: usize,
) -> std::collections::BTreeMap<u16, u32> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = Vec::with_capacity(total);
    for _ in 0..total {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let api = api.clone();
        let charger = charger.to_string();
        tasks.push(tokio::spawn(async move {
            let reply = api.command(&charger, "clear-cache", json!({})).await;
            drop(permit);
            reply.map(|r| r.status).unwrap_or(0)
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    statuses
}

/// Many chargers sending CALLs back to back without waiting for answers.
async fn call_flood(ocpp_url: &str, ids: &[String], per_charger: usize) -> usize {
    let mut tasks = Vec::new();
    for id in ids {
        let url = ocpp_url.to_string();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let client = raw_client(&url, &id).await;
            let (mut sink, mut source) = client.split();
            let sender = tokio::spawn(async move {
                for n in 0..per_charger {
                    let frame = format!(r#"[2,"f{n}","Heartbeat",{{}}]"#);
                    if sink.feed(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
                let _ = sink.flush().await;
                let _ = sink.close().await;
            });
            let mut answered = 0;
            while answered < per_charger {
                match tokio::time::timeout(Duration::from_secs(30), source.next()).await {
                    Ok(Some(Ok(Message::Text(_)))) => answered += 1,
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            let _ = sender.await;
            answered
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await.unwrap();
    }
    answered
}

#[tokio::test]
async fn far_past_capacity_memory_stays_flat_and_the_gateway_recovers() {
    let estate = Estate::new(&["--command-timeout", "1s"]).await;
    // A charger that takes commands and never answers them.
    let mut silent = estate.charger("CP-SILENT", "ocpp1.6").await;
    let flooders: Vec<String> = (0..40).map(|n| format!("CP-FLOOD-{n}")).collect();
    for id in &flooders {
        estate
            .admin
            .charger(id, "site-a")
            .await
            .unwrap()
            .expect(201);
    }
    let pid = estate.gateway.pid();
    let mut rss = vec![rss_kib(pid)];
    let rounds = 3;
    let commands_per_round = 2_000;
    let calls_per_charger = 500;
    for round in 0..rounds {
        let started = Instant::now();
        let (statuses, answered) = tokio::join!(
            command_burst(&estate.ops, "CP-SILENT", commands_per_round, 256),
            call_flood(&estate.gateway.ocpp_url, &flooders, calls_per_charger)
        );
        rss.push(rss_kib(pid));
        eprintln!(
            "overload round {round}: commands {statuses:?}, {answered} flood CALLs answered, {:?}, RSS {} KiB",
            started.elapsed(),
            rss.last().unwrap()
        );
        // Every command gets a definite answer: refused at once when the queue is full, or a
        // timeout for those that waited; nothing else, and nothing lost.
        assert_eq!(statuses.values().sum::<u32>() as usize, commands_per_round);
        assert!(
            statuses.keys().all(|s| [503, 504].contains(s)),
            "round {round}: {statuses:?}"
        );
        assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "{statuses:?}");
        assert_eq!(
            answered,
            flooders.len() * calls_per_charger,
            "every CALL answered"
        );
        // Drain what reached the silent charger so its stash does not grow in this test.
        while silent.next_call(Duration::from_millis(1)).await.is_some() {}
    }
    let first = rss[1];
    let last = *rss.last().unwrap();
    eprintln!("RSS KiB per round (start first): {rss:?}");
    assert!(
        last <= first + 16 * 1024,
        "memory keeps growing under repeated overload: {rss:?} KiB"
    );
    // Recovery: the silent charger answers again and commands go through at once.
    let api = estate.ops.clone();
    let command =
        tokio::spawn(async move { api.command("CP-SILENT", "clear-cache", json!({})).await });
    let (id, _, _) = silent
        .next_call(Duration::from_secs(5))
        .await
        .expect("the next command arrives");
    silent.reply(&id, json!({"status": "Accepted"})).unwrap();
    command.await.unwrap().unwrap().expect(200);
    assert_healthy(&estate, "CP-PROBE-5").await;
}

#[tokio::test]
async fn the_same_id_connecting_many_times_at_once_ends_with_one_connection() {
    let estate = Estate::new(&["--command-timeout", "2s"]).await;
    let mut first = estate.charger("CP-SAME", "ocpp1.6").await;
    // An in-flight command on the old connection fails cleanly (409) when it is replaced.
    let api = estate.ops.clone();
    let in_flight =
        tokio::spawn(async move { api.command("CP-SAME", "clear-cache", json!({})).await });
    first
        .next_call(Duration::from_secs(5))
        .await
        .expect("command on the first connection");

    let mut contenders = Vec::new();
    for _ in 0..20 {
        let url = estate.gateway.ocpp_url.clone();
        contenders.push(tokio::spawn(async move {
            Charger::connect(&url, "CP-SAME", &["ocpp1.6"]).await
        }));
    }
    let mut chargers = Vec::new();
    for contender in contenders {
        chargers.push(contender.await.unwrap().expect("every attempt is accepted"));
    }
    assert_eq!(
        first.closed(Duration::from_secs(5)).await,
        Some(Some(1000)),
        "the replaced connection gets a normal close frame"
    );
    in_flight.await.unwrap().unwrap().expect(409);

    // All but one of the 20 get a close frame; the survivor is the charger's connection.
    // Closes are counted, not timed: poll the open ones in rounds until 19 have closed (the
    // deadline only stops a test that would otherwise hang), then check the last one stays.
    let mut survivors: Vec<usize> = (0..chargers.len()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while survivors.len() > 1 && Instant::now() < deadline {
        let mut open = Vec::new();
        for n in survivors {
            match chargers[n].closed(Duration::from_millis(100)).await {
                Some(Some(1000)) => {}
                None => open.push(n),
                other => panic!("contender {n}: unexpected end {other:?}"),
            }
        }
        survivors = open;
    }
    assert_eq!(survivors.len(), 1, "survivors: {survivors:?}");
    assert_eq!(
        chargers[survivors[0]].closed(QUIET).await,
        None,
        "the survivor stays connected"
    );
    let survivor = &mut chargers[survivors[0]];
    survivor.boot().await.unwrap();
    let api = estate.ops.clone();
    let command =
        tokio::spawn(async move { api.command("CP-SAME", "clear-cache", json!({})).await });
    let (id, _, _) = survivor
        .next_call(Duration::from_secs(5))
        .await
        .expect("the survivor gets the command");
    survivor.reply(&id, json!({"status": "Accepted"})).unwrap();
    command.await.unwrap().unwrap().expect(200);
    // Replaced sessions leave once their close handshake ends (at most 2 s): then exactly
    // one connection is counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics(&estate.gateway.api_url).await;
        let counted = metric(&text, r#"voltgate_chargers_connected{version="1.6"}"#);
        if counted == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{counted} connections counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_answer_after_the_timeout_is_logged_and_ignored() {
    let estate = Estate::new(&["--command-timeout", "500ms"]).await;
    let mut charger = estate.charger("CP-LATE", "ocpp2.0.1").await;
    let api = estate.ops.clone();
    let command =
        tokio::spawn(async move { api.command("CP-LATE", "clear-cache", json!({})).await });
    let (late, _, _) = charger
        .next_call(Duration::from_secs(5))
        .await
        .expect("call");
    let reply = command.await.unwrap().unwrap().expect(504);
    assert_eq!(reply.body["error"], "charger_timeout");
    charger.reply(&late, json!({"status": "Accepted"})).unwrap();
    assert!(
        charger.next(QUIET).await.is_none(),
        "nothing answers a late answer"
    );
    let beat = charger.call_ok("Heartbeat", json!({})).await.unwrap();
    assert!(beat["currentTime"].is_string());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !estate
        .gateway
        .output()
        .contains("answer to no outstanding CALL ignored")
    {
        assert!(Instant::now() < deadline, "the late answer was not logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = estate
        .admin
        .get("/api/v1/audit?limit=20")
        .await
        .unwrap()
        .expect(200);
    assert!(
        audit.text.contains("timeout"),
        "the audit record keeps the timeout outcome: {}",
        audit.text
    );
}

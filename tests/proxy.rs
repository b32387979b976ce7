//! Forward proxies (SPEC rule 29), through the environment as a user sets
//! them: `HTTP_PROXY` routes the default pool's streams, `NO_PROXY`
//! exempts hosts, and a request that fails at the proxy names the proxy,
//! without its password. One test in its own binary: the environment is
//! the process's.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{ClientPool, Error, Event, EventSource, RetryPolicy};
use support::{Reply, TestServer};

async fn first(es: &mut EventSource) -> Result<String, Error> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), es.next())
            .await
            .expect("nothing for 30 s")
        {
            Some(Ok(Event::Message(m))) => return Ok(m.data().to_owned()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => panic!("ended"),
        }
    }
}

#[tokio::test]
async fn environment_proxies_route_streams_and_a_dead_one_is_named() {
    // A forward proxy gets the absolute URL as its request target.
    let proxy = TestServer::start(|req, _| {
        Reply::sse()
            .body(format!("data: via proxy for {}\n\n", req.path))
            .stall()
    })
    .await;
    let direct = TestServer::start(|_, _| Reply::sse().body("data: direct\n\n").stall()).await;
    for name in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        std::env::remove_var(name);
    }
    std::env::set_var("HTTP_PROXY", proxy.url(""));
    std::env::set_var("NO_PROXY", "localhost,127.0.0.1");
    let pool = ClientPool::default();
    // No DNS for this name: only the proxy can have answered.
    let mut es = EventSource::builder("http://sse.invalid/events")
        .client_pool(pool.clone())
        .build()
        .unwrap();
    assert_eq!(
        first(&mut es).await.unwrap(),
        "via proxy for http://sse.invalid/events"
    );
    let mut es = EventSource::builder(direct.url("/events"))
        .client_pool(pool)
        .build()
        .unwrap();
    assert_eq!(first(&mut es).await.unwrap(), "direct");
    assert_eq!(proxy.request_count(), 1, "NO_PROXY was not honoured");

    // A proxy that is down: the error names it, not only the origin.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    std::env::set_var(
        "HTTP_PROXY",
        format!("http://alice:hunter2@127.0.0.1:{port}"),
    );
    let mut es = EventSource::builder("http://sse.invalid/events")
        .client_pool(ClientPool::default())
        .retry_policy(RetryPolicy::default().max_attempts(0))
        .build()
        .unwrap();
    let e = first(&mut es).await.unwrap_err();
    let shown = format!("{e}\n{e:#}\n{e:?}");
    assert_eq!(
        e.proxy(),
        Some(format!("http://127.0.0.1:{port}/").as_str()),
        "{shown}"
    );
    assert!(
        format!("{e:#}").contains(&format!(
            "through the proxy http://127.0.0.1:{port}/ failed"
        )),
        "{shown}"
    );
    assert!(e.is_connect(), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

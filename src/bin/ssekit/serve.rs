//! `ssekit serve FILE`: replay a recording to every client, with its
//! timing, on 127.0.0.1; the server is ssekit's own `testing::MockServer`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ssekit::testing::{MockServer, Recording, Script};

use crate::printer::escape_controls;
use crate::values::parse_speed;

pub const HELP: &str = "\
Prints the server's URL (http://127.0.0.1:PORT/) as the first line of
stdout, then serves every request, whatever its path, until killed: 200
text/event-stream with Cache-Control: no-cache, and the recorded chunks at
their recorded times divided by --speed. A request with Last-Event-ID
resumes after the recorded event with that id (the chunks up to and
including it are skipped); when nothing is left it gets 204 No Content,
which tells a client to stop. An id the recording does not have replays
from the start. With --loop the recording starts again after its end, on
the same connection. Each request is logged on stderr.";

/// The arguments of `ssekit serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A recording made by `ssekit record`
    pub file: PathBuf,
    /// The port on 127.0.0.1 (default: a free one)
    #[arg(long, default_value = "0")]
    pub port: u16,
    /// Play the recording X times faster (0.5: twice as slow)
    #[arg(long, value_name = "X", default_value = "1", value_parser = parse_speed)]
    pub speed: f64,
    /// Start the recording again when it ends, on the same connection
    #[arg(long = "loop")]
    pub looped: bool,
}

pub async fn run(a: ServeArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&a.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ssekit: reading {}: {e}", a.file.display());
            return ExitCode::from(2);
        }
    };
    let recording: Recording = match text.parse() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ssekit: {}: {e}", a.file.display());
            return ExitCode::from(2);
        }
    };
    let (speed, looped) = (a.speed, a.looped);
    let server = MockServer::builder()
        .addr(SocketAddr::from(([127, 0, 0, 1], a.port)))
        // serve runs until killed: its memory must not grow per request.
        .keep_requests(0)
        .responder(move |req| {
            let id = req.last_event_id().unwrap_or("");
            let resumed = (!id.is_empty())
                .then(|| recording.after_event_id(id))
                .flatten();
            eprintln!(
                "* request {}: {} {}{}",
                req.index(),
                // As received: escaped, so that a request cannot drive the
                // terminal that shows the log.
                escape_controls(req.method()),
                escape_controls(req.path()),
                match (id.is_empty(), resumed.is_some()) {
                    (true, _) => String::new(),
                    (false, true) => format!(" (resuming after id {id:?})"),
                    (false, false) => format!(" (id {id:?} not in the recording: from the start)"),
                }
            );
            let part = resumed.as_ref().unwrap_or(&recording);
            if part.chunks().is_empty() && !looped {
                return Script::status(204);
            }
            let script = Script::sse().replay_at_speed(part, speed);
            if looped {
                script.replay_forever(&recording, speed)
            } else {
                script
            }
        })
        .start()
        .await;
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ssekit: cannot listen on 127.0.0.1:{}: {e}", a.port);
            return ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", server.url("/"))
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "* serving {} ({} chunks) at {}x; stop with Ctrl-C",
        a.file.display(),
        text.lines().count().saturating_sub(1),
        speed
    );
    std::future::pending::<()>().await;
    drop(server);
    ExitCode::SUCCESS
}

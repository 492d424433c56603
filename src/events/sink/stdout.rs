//! `stdout`: one JSON line per event on standard output, made safe for a
//! terminal (C1 and bidi characters as `\\u` escapes, the same JSON value).

use std::io::Write;

use super::{Sink, SinkError};
use crate::events::Event;

pub struct Stdout;

impl Sink for Stdout {
    fn send(&mut self, event: &Event) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", crate::escape::json_for_terminal(&event.body))
            .and_then(|()| out.flush())
            .map_err(|e| format!("standard output: {e}"))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

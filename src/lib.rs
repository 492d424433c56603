//! tripseal: a file-integrity monitor for the hosts that run Celery workers.
//!
//! Data flow: [`rules`] select paths, [`scan`] walks and hashes them,
//! [`baseline`] stores the entries in one SQLite file, [`report`] renders them.

pub mod accounts;
pub mod attrs;
pub mod audit;
pub mod baseline;
pub mod certs;
pub mod check;
pub mod compare;
pub mod config;
pub mod content;
pub mod defaults;
pub mod error;
pub mod escape;
pub mod events;
pub mod files;
pub mod fleet;
pub mod init;
pub mod origin;
pub mod pipeline;
pub mod progress;
pub mod python;
pub mod report;
pub mod rules;
pub mod scan;
pub mod seal;
pub mod settings;
pub mod shapes;
pub mod sqlite;
pub mod units;
pub mod watch;
